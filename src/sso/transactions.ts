import { randomBytes } from 'node:crypto';
import type { Clock } from '../domain/clock.js';
import { AppError } from '../errors/index.js';
import type { Metrics } from '../observability/metrics.js';
import { keys, type KeyValueStore } from '../store/index.js';

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
  /** App logins: the key the app later checks with POST /login/check/{sessionKey}. */
  sessionKey?: string;
  /** The tenant's ssoEpoch when the login started: an SSO switch since then voids it. */
  ssoEpoch: number;
  /** OIDC: the PKCE verifier and the nonce of this authorization request. */
  codeVerifier?: string;
  nonce?: string;
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

export class LoginTransactions {
  constructor(
    private readonly store: KeyValueStore,
    private readonly clock: Clock,
    private readonly ttlSeconds: number,
    private readonly metrics?: Pick<Metrics, 'loginTransactions'>,
  ) {}

  async create(tenant: { domain: string; ssoEpoch: number }, fields: Omit<LoginTransaction, 'id' | 'createdAt' | 'domain' | 'ssoEpoch'>): Promise<LoginTransaction> {
    const txn: LoginTransaction = { ...fields, domain: tenant.domain, ssoEpoch: tenant.ssoEpoch, id: newOpaqueId(), createdAt: this.clock.now() };
    const json = JSON.stringify(txn);
    const bytes = Buffer.byteLength(json);
    if (bytes > MAX_TRANSACTION_BYTES) {
      throw new AppError('bad_request', { reason: 'transaction_too_large', detail: `login transaction of ${bytes} bytes (at most ${MAX_TRANSACTION_BYTES})` });
    }
    await this.store.set(keys.loginTransaction(txn.domain, txn.id), json, { ttlMs: this.ttlSeconds * 1000 });
    this.metrics?.loginTransactions.inc({ type: txn.ssoType });
    return txn;
  }

  /**
   * Takes the transaction out of the store (single use, atomically) and checks it belongs to this
   * tenant and is younger than the TTL by the injected clock. Throws `login_transaction_invalid`.
   */
  async consume(tenant: { domain: string; ssoEpoch: number }, rawId: unknown): Promise<LoginTransaction> {
    const domain = tenant.domain;
    if (typeof rawId !== 'string' || !TRANSACTION_ID_RE.test(rawId)) {
      throw new AppError('login_transaction_invalid', { reason: 'transaction_id_malformed' });
    }
    const raw = await this.store.getDel(keys.loginTransaction(domain, rawId));
    if (raw === null) throw new AppError('login_transaction_invalid', { reason: 'transaction_unknown_or_used' });
    const txn = JSON.parse(raw) as LoginTransaction;
    if (txn.domain !== domain || txn.id !== rawId) {
      throw new AppError('login_transaction_invalid', { reason: 'transaction_of_other_tenant' });
    }
    if (this.clock.now() - txn.createdAt >= this.ttlSeconds * 1000) {
      throw new AppError('login_transaction_invalid', { reason: 'transaction_expired' });
    }
    // Switching SSO on or off discards the logins in flight (S-21/S-22).
    if ((txn.ssoEpoch ?? 0) !== tenant.ssoEpoch) throw new AppError('login_transaction_invalid', { reason: 'transaction_voided_by_sso_switch' });
    return txn;
  }
}
