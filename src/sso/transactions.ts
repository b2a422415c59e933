import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../domain/clock.js';
import { AppError, type LoginBindingRejectReason } from '../errors/index.js';
import type { Metrics } from '../observability/metrics.js';
import { keys, type KeyValueStore } from '../store/index.js';
import type { AppLoginChecks } from './app-login-checks.js';

export type ClientKind = 'web' | 'app';

/** A login in flight between /d/login and the IdP's answer. The target never leaves the server (S-6). */
export interface LoginTransaction {
  id: string;
  domain: string;
  ssoType: 'saml' | 'oauth';
  /** Where the browser goes after login (already checked against S-5). */
  target: string;
  clientKind: ClientKind;
  /** The AuthnRequest ID (SAML) the response must answer. */
  requestId?: string;
  /** App logins: the app's sessionKey (OAuth: sent to the IdP, which checks it with POST /login/check/{sessionKey}, S-18). */
  sessionKey?: string;
  /** The tenant's ssoEpoch when the login started: an SSO switch since then voids it. */
  ssoEpoch: number;
  /** OIDC: the PKCE verifier and the nonce of this authorization request. */
  codeVerifier?: string;
  nonce?: string;
  /**
   * SHA-256 (base64url) of the login binding cookie of the browser that started the login; never the
   * raw value. Absent only on transactions stored before binding existed, which are refused.
   */
  browserBindingDigest?: string;
  /**
   * Set on an administrator's test sign-in (docs/spec.md §11): the login runs at the tenant's configured
   * IdP even while SSO is off, and its end records the outcome on this test sign-in instead of
   * creating a session.
   */
  testSignInId?: string;
  createdAt: number;
}

/** 192 random bits, URL-safe: the only thing that travels in RelayState / state. */
export const TRANSACTION_ID_RE = /^[A-Za-z0-9_-]{32}$/;

/**
 * Largest stored transaction (serialized JSON, bytes). Its fields are bounded where they come in (a
 * target of at most 2,048 characters after normalisation, a sessionKey of 128, a domain of 253): the
 * largest legitimate one is about 2.8 KB. Checked before the write, so no input can make the store
 * hold more per login started.
 */
export const MAX_TRANSACTION_BYTES = 4096;

export function newOpaqueId(bytes = 24): string {
  return randomBytes(bytes).toString('base64url');
}

/** The login binding cookie's value: 256 random bits, base64url. */
export const BROWSER_BINDING_RE = /^[A-Za-z0-9_-]{43}$/;

export function newBrowserBinding(): string {
  return newOpaqueId(32);
}

function bindingDigest(browserBinding: string): Buffer {
  return createHash('sha256').update(browserBinding, 'utf8').digest();
}

function notBound(reason: LoginBindingRejectReason, detail: string): AppError {
  return new AppError('login_not_bound', { reason, detail });
}

export class LoginTransactions {
  constructor(
    private readonly store: KeyValueStore,
    private readonly clock: Clock,
    private readonly ttlSeconds: number,
    private readonly metrics?: Pick<Metrics, 'loginTransactions'>,
    /** S-18: an app login's check record lives exactly as long as its transaction is in flight. */
    private readonly appChecks?: Pick<AppLoginChecks, 'open' | 'close'>,
  ) {}

  /** `browserBinding`: the raw value of the starting browser's login binding cookie; only its digest is kept. */
  async create(
    tenant: { domain: string; ssoEpoch: number },
    fields: Omit<LoginTransaction, 'id' | 'createdAt' | 'domain' | 'ssoEpoch' | 'browserBindingDigest'>,
    browserBinding: string,
  ): Promise<LoginTransaction> {
    if (!BROWSER_BINDING_RE.test(browserBinding)) throw new Error('login transaction needs a well-formed browser binding');
    const txn: LoginTransaction = {
      ...fields,
      domain: tenant.domain,
      ssoEpoch: tenant.ssoEpoch,
      id: newOpaqueId(),
      browserBindingDigest: bindingDigest(browserBinding).toString('base64url'),
      createdAt: this.clock.now(),
    };
    const json = JSON.stringify(txn);
    const bytes = Buffer.byteLength(json);
    if (bytes > MAX_TRANSACTION_BYTES) {
      throw new AppError('bad_request', { reason: 'transaction_too_large', detail: `login transaction of ${bytes} bytes (at most ${MAX_TRANSACTION_BYTES})` });
    }
    await this.store.set(keys.loginTransaction(txn.domain, txn.id), json, { ttlMs: this.ttlSeconds * 1000 });
    await this.appChecks?.open(txn);
    this.metrics?.loginTransactions.inc({ type: txn.ssoType });
    return txn;
  }

  /**
   * Takes the transaction out of the store (single use, atomically) and checks it belongs to this
   * tenant, was started by this browser (`browserBinding`: the raw login binding cookie of the request,
   * or undefined), and is younger than the TTL by the injected clock. Throws `login_transaction_invalid`,
   * or `login_not_bound` when the browser is not the one that started the login (the transaction is
   * spent either way).
   */
  async consume(tenant: { domain: string; ssoEpoch: number }, rawId: unknown, browserBinding: string | undefined): Promise<LoginTransaction> {
    const domain = tenant.domain;
    if (typeof rawId !== 'string' || !TRANSACTION_ID_RE.test(rawId)) {
      throw new AppError('login_transaction_invalid', { reason: 'transaction_id_malformed' });
    }
    const raw = await this.store.getDel(keys.loginTransaction(domain, rawId));
    if (raw === null) throw new AppError('login_transaction_invalid', { reason: 'transaction_unknown_or_used' });
    const txn = JSON.parse(raw) as LoginTransaction;
    // The IdP has answered (whatever comes of it): the app login is no longer in flight (S-18).
    await this.appChecks?.close(txn);
    if (txn.domain !== domain || txn.id !== rawId) {
      throw new AppError('login_transaction_invalid', { reason: 'transaction_of_other_tenant' });
    }
    try {
      // Before anything else is said about it: a transaction started in another browser is not this one's.
      this.checkBinding(txn, browserBinding);
      if (this.clock.now() - txn.createdAt >= this.ttlSeconds * 1000) {
        throw new AppError('login_transaction_invalid', { reason: 'transaction_expired' });
      }
      // Switching SSO on or off discards the logins in flight (S-21/S-22).
      if ((txn.ssoEpoch ?? 0) !== tenant.ssoEpoch) throw new AppError('login_transaction_invalid', { reason: 'transaction_voided_by_sso_switch' });
    } catch (err) {
      // A test sign-in's refusal is its outcome: the route records it there.
      if (err instanceof AppError && txn.testSignInId) err.testSignIn = { id: txn.testSignInId };
      throw err;
    }
    return txn;
  }

  /**
   * The test sign-in a live transaction of this tenant belongs to, without consuming it (one GET). The
   * ACS and the OAuth callback of a tenant whose SSO is off ask this before anything else: only a test
   * sign-in's transaction goes on from there.
   */
  async testSignInOf(domain: string, rawId: unknown): Promise<string | undefined> {
    if (typeof rawId !== 'string' || !TRANSACTION_ID_RE.test(rawId)) return undefined;
    const raw = await this.store.get(keys.loginTransaction(domain, rawId));
    if (raw === null) return undefined;
    const txn = JSON.parse(raw) as LoginTransaction;
    return txn.domain === domain ? txn.testSignInId : undefined;
  }

  /** Finding 2 (login CSRF / session swap): the request must carry the cookie whose digest the transaction keeps. */
  private checkBinding(txn: LoginTransaction, browserBinding: string | undefined): void {
    if (txn.browserBindingDigest === undefined) throw notBound('transaction_unbound', 'the transaction carries no browser binding');
    if (browserBinding === undefined) throw notBound('binding_cookie_missing', 'no login binding cookie on the request');
    if (!BROWSER_BINDING_RE.test(browserBinding)) throw notBound('binding_cookie_malformed', 'the login binding cookie is malformed');
    const expected = Buffer.from(txn.browserBindingDigest, 'base64url');
    const presented = bindingDigest(browserBinding);
    if (expected.length !== presented.length || !timingSafeEqual(expected, presented)) {
      throw notBound('binding_mismatch', 'the login binding cookie is not the one the login started with');
    }
  }
}
