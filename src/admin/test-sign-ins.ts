import { randomBytes } from 'node:crypto';
import type { Clock } from '../domain/clock.js';
import type { Member } from '../domain/member.js';
import { AppError } from '../errors/index.js';
import { TEST_SIGN_IN_RECORD_TTL_MS, TEST_SIGN_IN_TOKEN_TTL_MS, digestForKey, keys, type KeyValueStore } from '../store/index.js';

/** The member a successful test sign-in mapped to. */
export interface TestSignInMember {
  id: string;
  account: string;
  name: string;
  externalKey: string | null;
}

/**
 * An administrator's test sign-in (docs/spec.md §11): a single-use link that runs one login at the
 * tenant's configured IdP — with the settings stored at the moment the link is opened, whether SSO is on
 * or not — and records what came back instead of creating a session.
 */
export interface TestSignInRecord {
  id: string;
  domain: string;
  status: 'pending' | 'succeeded' | 'failed';
  /** Who asked for it (`actorOf`). */
  createdBy: string;
  createdAt: number;
  /** Until when the link can be opened. */
  expiresAt: number;
  openedAt?: number;
  finishedAt?: number;
  member?: TestSignInMember;
  /** The identifier the IdP asserted (NameID, user_id or the configured claim), when the login got that far. */
  assertedId?: string;
  code?: string;
  reason?: string;
  message?: string;
}

/** The admin API's view of a record (times as ISO strings). */
export interface TestSignInView {
  id: string;
  status: TestSignInRecord['status'];
  createdAt: string;
  expiresAt: string;
  openedAt?: string;
  finishedAt?: string;
  member?: TestSignInMember;
  assertedId?: string;
  code?: string;
  reason?: string;
  message?: string;
}

/** 256 random bits, base64url: the link's token. */
export const TEST_SIGN_IN_TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;
const ID_RE = /^[A-Za-z0-9_-]{16}$/;

const CERTIFICATE = 'The response’s signature does not verify with the IdP certificate registered here (certificate mismatch). Upload the IdP’s current signing certificate, or import its metadata again.';
const CLOCK = 'The validity times of the IdP’s answer do not fit this gateway’s clock (clock skew, or an answer that is too old or not yet valid). Check that the IdP’s clock is correct.';
const UNREADABLE = 'The IdP’s answer was not a readable SAML response. Check that the IdP posts a SAML 2.0 Response to the ACS URL shown under SP details.';
const ENDPOINT = 'The IdP addressed its answer to another URL than this gateway’s ACS URL. In the IdP, set the ACS (reply) URL to the one shown under SP details.';
const TRANSACTION = 'The test sign-in expired, was already used, or SSO was switched while it ran. Start a new test sign-in.';
const BINDING = 'The test sign-in was finished in another browser than the one it was started in, or the browser blocked a cookie it needs. Open the test link and finish it in the same browser.';
const TOKEN = 'The IdP refused to exchange the authorization code: check the client ID and client secret.';
const USERINFO = 'The IdP’s user information API refused the request: check the client ID, client secret and the user information URL.';

/**
 * The precise cause of a failed test, in plain words, by private reason. A reason not listed here falls
 * back to the error code's public message.
 */
export const TEST_SIGN_IN_MESSAGES: Readonly<Record<string, string>> = {
  // SAML (S-8)
  signature_invalid: CERTIFICATE,
  weak_algorithm: 'The IdP signs with SHA-1, which is refused. Switch the IdP to RSA-SHA256 (or, for a legacy IdP only, allow SHA-1).',
  issuer_mismatch: 'The answer comes from another IdP entity ID than the one registered here. Check the IdP entity ID, or import the IdP’s metadata again.',
  audience_mismatch: 'The assertion is meant for another service provider (wrong audience). In the IdP, set the SP entity ID (audience) to the one shown under SP details.',
  destination_mismatch: ENDPOINT,
  recipient_mismatch: ENDPOINT,
  in_response_to_mismatch: 'The IdP’s answer does not answer this sign-in’s request (InResponseTo). Start a new test sign-in.',
  bearer_confirmation_missing: 'The assertion has no usable bearer subject confirmation (Recipient and NotOnOrAfter) for this gateway.',
  assertion_expired: CLOCK,
  assertion_not_yet_valid: CLOCK,
  assertion_too_old: CLOCK,
  assertion_replayed: 'This assertion was already used once. Start a new test sign-in.',
  status_not_success: 'The IdP reported that the sign-in did not succeed (its SAML status was not Success). The IdP’s own logs say why (user not assigned to the application, cancelled …).',
  encrypted_assertion_unsupported: 'The IdP encrypts the assertion, and this gateway has no decryption key (saml.decryption). Ask the operator to configure one, or turn assertion encryption off for this application in the IdP.',
  decryption_failed: 'The encrypted assertion could not be decrypted: the IdP encrypts to a certificate other than the SP encryption certificate(s) in the SP metadata. Upload the current SP metadata (or its encryption certificate) to the IdP.',
  encryption_algorithm_unsupported: 'The IdP encrypts the assertion with an algorithm the gateway does not accept. Choose RSA-OAEP key transport and AES-GCM or AES-CBC content encryption in the IdP.',
  assertion_not_encrypted: 'This tenant requires encrypted assertions, and the IdP sent a plaintext one. Turn assertion encryption on in the IdP, with the SP encryption certificate from the SP metadata.',
  assertion_missing: UNREADABLE,
  not_a_response: UNREADABLE,
  response_missing: UNREADABLE,
  response_not_base64: UNREADABLE,
  response_too_large: 'The IdP’s answer is larger than this gateway accepts.',
  xml_malformed: UNREADABLE,
  xml_too_complex: UNREADABLE,
  doctype_refused: UNREADABLE,
  multiple_assertions: 'The IdP’s answer holds more than one assertion, or the assertion in an unexpected place; it is refused.',
  name_id_invalid: 'The assertion carries no usable NameID (the user identifier): configure the IdP to send one plain-text NameID.',
  second_gate_refused: 'The second, independent SAML verifier refused the answer that the first accepted. The operator’s log has the cause under the support reference.',
  second_gate_disagrees: 'The two SAML verifiers read different identities from the answer; it is refused.',
  unsolicited_refused: 'The IdP sent an answer that no sign-in here asked for. Start the test from the console link, not from the IdP’s portal.',
  // mapping (S-1 … S-3)
  member_not_found: 'Signing in at the IdP worked, but no member of this organisation has the identifier it sent (see the asserted id). Set that member’s external key (or account) to this value, or check the user key setting.',
  member_not_active: 'Signing in at the IdP worked and the member exists, but is not active (suspended, pending or unapproved).',
  // login transactions and binding
  transaction_expired: TRANSACTION,
  transaction_unknown_or_used: TRANSACTION,
  transaction_voided_by_sso_switch: TRANSACTION,
  transaction_not_saml: TRANSACTION,
  transaction_not_oauth: TRANSACTION,
  binding_cookie_missing: BINDING,
  binding_cookie_malformed: BINDING,
  binding_mismatch: BINDING,
  // OAuth / OIDC (S-15 … S-17)
  idp_error: 'The IdP answered with an error instead of signing the user in (the user cancelled, or the application is not assigned to them).',
  code_missing: 'The IdP came back without an authorization code.',
  token_error: TOKEN,
  token_http_error: TOKEN,
  token_access_token_missing: 'The IdP’s token response has no access token.',
  userinfo_access_denied: USERINFO,
  userinfo_invalid_request: USERINFO,
  userinfo_unauthorized_client: USERINFO,
  userinfo_invalid_access: USERINFO,
  userinfo_error: USERINFO,
  userinfo_http_error: USERINFO,
  userinfo_user_id_missing: 'The IdP’s user information has no user_id.',
  oidc_discovery_failed: 'The issuer’s discovery document (/.well-known/openid-configuration) could not be read: check the issuer URL.',
  oidc_response_invalid: 'The IdP’s answer to the token request could not be used (state, issuer or PKCE check failed).',
  oidc_id_token_invalid: 'The ID token did not validate (issuer, audience, signature or expiry): check the issuer URL and client ID.',
  oidc_id_token_issued_in_future: CLOCK,
  oidc_user_key_missing: 'The ID token lacks the claim configured as the user key.',
  token_outbound_refused: 'This gateway may not call the IdP’s token endpoint: its address is not public and the operator has not admitted it.',
  userinfo_outbound_refused: 'This gateway may not call the IdP’s user information endpoint: its address is not public and the operator has not admitted it.',
  oidc_outbound_refused: 'This gateway may not call the IdP: its address is not public and the operator has not admitted it.',
  token_idp_unreachable: 'The IdP’s token endpoint did not answer in time.',
  userinfo_idp_unreachable: 'The IdP’s user information endpoint did not answer in time.',
  oidc_idp_unreachable: 'The IdP did not answer in time.',
};

/** Code, private reason and plain-words message of a failed test. */
export function explainTestFailure(err: AppError): { code: string; reason: string; message: string } {
  const reason = err.reason ?? err.code;
  return { code: err.code, reason, message: TEST_SIGN_IN_MESSAGES[reason] ?? err.publicMessage };
}

export function testSignInMember(m: Member): TestSignInMember {
  return { id: m.id, account: m.account, name: m.name, externalKey: m.externalKey ?? null };
}

export function testSignInView(r: TestSignInRecord): TestSignInView {
  const iso = (t: number | undefined): string | undefined => (t === undefined ? undefined : new Date(t).toISOString());
  return {
    id: r.id,
    status: r.status,
    createdAt: iso(r.createdAt)!,
    expiresAt: iso(r.expiresAt)!,
    ...(r.openedAt !== undefined ? { openedAt: iso(r.openedAt) } : {}),
    ...(r.finishedAt !== undefined ? { finishedAt: iso(r.finishedAt) } : {}),
    ...(r.member ? { member: r.member } : {}),
    ...(r.assertedId !== undefined ? { assertedId: r.assertedId } : {}),
    ...(r.code !== undefined ? { code: r.code, reason: r.reason, message: r.message } : {}),
  };
}

export type TestSignInOutcome =
  | { status: 'succeeded'; member: TestSignInMember; assertedId: string }
  | { status: 'failed'; code: string; reason: string; message: string; assertedId?: string };

export class TestSignIns {
  constructor(
    private readonly store: KeyValueStore,
    private readonly clock: Clock,
  ) {}

  /** A new test sign-in and the token of its link (shown once; only its digest is stored). */
  async create(domain: string, createdBy: string): Promise<{ record: TestSignInRecord; token: string }> {
    const now = this.clock.now();
    const record: TestSignInRecord = {
      id: randomBytes(12).toString('base64url'),
      domain,
      status: 'pending',
      createdBy,
      createdAt: now,
      expiresAt: now + TEST_SIGN_IN_TOKEN_TTL_MS,
    };
    const token = randomBytes(32).toString('base64url');
    await this.store.set(keys.ssoTestSignIn(domain, record.id), JSON.stringify(record), { ttlMs: TEST_SIGN_IN_RECORD_TTL_MS });
    await this.store.set(keys.ssoTestSignInToken(digestForKey(token)), `${domain} ${record.id}`, { ttlMs: TEST_SIGN_IN_TOKEN_TTL_MS });
    return { record, token };
  }

  /**
   * Spends a link's token (single use, atomically) and marks its test opened. Throws
   * `test_sign_in_invalid` for a malformed, unknown, used or expired token.
   */
  async open(token: unknown): Promise<TestSignInRecord> {
    const invalid = (reason: string): AppError => new AppError('test_sign_in_invalid', { reason, detail: reason });
    if (typeof token !== 'string' || !TEST_SIGN_IN_TOKEN_RE.test(token)) throw invalid('token_malformed');
    const raw = await this.store.getDel(keys.ssoTestSignInToken(digestForKey(token)));
    if (raw === null) throw invalid('token_unknown_or_used');
    const [domain = '', id = ''] = raw.split(' ');
    const record = await this.get(domain, id);
    if (!record || record.status !== 'pending' || this.clock.now() >= record.expiresAt) throw invalid('token_expired');
    const opened: TestSignInRecord = { ...record, openedAt: this.clock.now() };
    await this.write(opened);
    return opened;
  }

  async get(domain: string, id: string): Promise<TestSignInRecord | null> {
    if (!ID_RE.test(id)) return null;
    const raw = await this.store.get(keys.ssoTestSignIn(domain, id));
    if (raw === null) return null;
    const record = JSON.parse(raw) as TestSignInRecord;
    return record.domain === domain ? record : null;
  }

  /** Records the outcome once; a record already finished or gone (expired) is left as it is. */
  async finish(domain: string, id: string, outcome: TestSignInOutcome): Promise<TestSignInRecord | null> {
    const record = await this.get(domain, id);
    if (!record || record.status !== 'pending') return null;
    const finished: TestSignInRecord = { ...record, ...outcome, finishedAt: this.clock.now() };
    await this.write(finished);
    return finished;
  }

  /** Rewrites a record keeping its remaining lifetime. */
  private async write(record: TestSignInRecord): Promise<void> {
    const key = keys.ssoTestSignIn(record.domain, record.id);
    const ttl = await this.store.pttl(key);
    if (ttl <= 0) return;
    await this.store.set(key, JSON.stringify(record), { ttlMs: ttl });
  }
}
