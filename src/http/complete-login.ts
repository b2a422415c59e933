import type { Request, Response } from 'express';
import { recordTenantLogin } from '../admin/domain-overview.js';
import type { Member } from '../domain/member.js';
import type { Tenant } from '../domain/tenant.js';
import { AppError } from '../errors/index.js';
import type { Services } from '../services.js';
import { sessionTtlMs } from '../sso/session-lifetime.js';
import type { LoginTransaction } from '../sso/transactions.js';
import { clearSessionCookie, readCookie, setSessionCookie } from './cookies.js';

export interface LoginOutcome {
  tenant: Tenant;
  member: Member;
  method: 'saml' | 'oauth';
  /** null for an allowed unsolicited SAML response. */
  transaction: LoginTransaction | null;
  /** S-10: SessionNotOnOrAfter, or now + expires_in. */
  idpExpiresAt?: number;
  nameId?: string;
  sessionIndex?: string;
}

export function cookieSettings(s: Services): { name: string; secure: boolean } {
  return { name: s.config.session.cookieName, secure: s.config.publicUrl.startsWith('https://') };
}

/**
 * The common end of every successful SSO login: a new session (never a reused id), the cookie, the
 * S-18 record for app logins, the audit event, and 303 to exactly the transaction's target.
 */
export async function completeLogin(s: Services, req: Request, res: Response, outcome: LoginOutcome): Promise<void> {
  const { tenant, member, transaction } = outcome;
  // The ACS refuses an unsolicited response with nowhere to land (acs.ts); checked again before any write.
  const landing = transaction?.target ?? s.defaultServiceUrl(tenant);
  if (landing === undefined) throw new AppError('unsolicited_response_refused', { reason: 'no_default_service_url', detail: 'no default service URL to land on' });
  const clientKind = transaction?.clientKind ?? 'web';
  const ttlMs = sessionTtlMs({
    clientKind,
    setExpireTime: tenant.sso.setExpireTime,
    idpExpiresAt: outcome.idpExpiresAt,
    now: s.clock.now(),
    webTtlMs: s.config.session.webTtlSeconds * 1000,
    appTtlMs: s.config.session.appTtlSeconds * 1000,
  });
  const cookie = cookieSettings(s);
  const previous = readCookie(req, cookie.name);
  if (previous) {
    await s.sessions.destroy(previous);
    clearSessionCookie(res, cookie);
  }
  const { id } = await s.sessions.create(
    {
      memberId: member.id,
      domain: tenant.domain,
      account: member.account,
      authMethod: outcome.method,
      clientKind,
      nameId: outcome.nameId,
      sessionIndex: outcome.sessionIndex,
    },
    ttlMs,
  );
  setSessionCookie(res, cookie, id, Math.floor(ttlMs / 1000));
  await s.audit.record({
    type: 'login.succeeded',
    domain: tenant.domain,
    actor: `member:${member.id}`,
    requestId: res.locals.requestId,
    ip: req.ip,
    data: { method: outcome.method, solicited: transaction !== null, clientKind },
  });
  s.metrics.recordLogin(tenant.domain, outcome.method, 'success');
  await s.events.signIn(req, { domain: tenant.domain, result: 'succeeded', protocol: signInProtocol(outcome.method, tenant), memberId: member.id });
  await s.loginActivity.record(tenant.domain, outcome.method, 'success');
  await recordTenantLogin(s, tenant.domain, res.locals.log);
  res.redirect(303, landing);
}

/** Audits a refused login against its tenant and lets the error page offer a fresh start. */
export async function auditRefusedLogin(s: Services, req: Request, res: Response, err: unknown, type: string, domain?: string): Promise<void> {
  if (!(err instanceof AppError)) return;
  const tenantDomain = err.tenantDomain ?? domain;
  s.metrics.recordLogin(tenantDomain, type.startsWith('oauth') ? 'oauth' : 'saml', 'failure');
  await s.loginActivity.record(tenantDomain, type.startsWith('oauth') ? 'oauth' : 'saml', 'failure', err.reason ?? err.code);
  await s.events.signIn(req, { domain: tenantDomain, result: 'refused', protocol: type.startsWith('oauth') ? 'oauth' : 'saml', code: err.code, reason: err.reason ?? err.code });
  res.locals.domain = tenantDomain;
  // A fresh start is the way out of a failed sign-in; the page offers it (a link, never an automatic loop).
  if (tenantDomain) res.locals.retryUrl = `/d/login/${tenantDomain}`;
  await s.audit.record({
    type: err.code === 'member_not_found' || err.code === 'member_not_active' ? 'login.failed' : type,
    domain: tenantDomain,
    actor: 'idp',
    requestId: res.locals.requestId,
    ip: req.ip,
    reason: err.reason ?? err.code,
  });
}

/** The event's protocol of an SSO login: `oidc` for an OAuth tenant of the OIDC profile. */
function signInProtocol(method: 'saml' | 'oauth', tenant: Tenant): 'saml' | 'oauth' | 'oidc' {
  return method === 'oauth' && tenant.sso.oauth?.profile === 'oidc' ? 'oidc' : method;
}
