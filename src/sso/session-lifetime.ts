import type { ClientKind } from './transactions.js';

export interface SessionLifetimeInput {
  clientKind: ClientKind;
  /** The tenant's `setExpireTime` (S-10). */
  setExpireTime: boolean;
  /** SAML SessionNotOnOrAfter or now + OAuth expires_in, ms since epoch. */
  idpExpiresAt?: number;
  now: number;
  webTtlMs: number;
  appTtlMs: number;
}

const MIN_TTL_MS = 60_000;

/** S-10: 24 h web / 30 days app, or the IdP's word when the tenant asks for it (kept within 1 min … 30 days). */
export function sessionTtlMs(input: SessionLifetimeInput): number {
  const fallback = input.clientKind === 'app' ? input.appTtlMs : input.webTtlMs;
  if (!input.setExpireTime || input.idpExpiresAt === undefined) return fallback;
  return Math.min(Math.max(input.idpExpiresAt - input.now, MIN_TTL_MS), input.appTtlMs);
}
