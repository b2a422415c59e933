import express, { Router, type Request, type Response } from 'express';
import { checkLogoutRedirect } from '../../domain/access-url.js';
import { TenantRepository } from '../../domain/tenants.js';
import type { Tenant } from '../../domain/tenant.js';
import { AppError } from '../../errors/index.js';
import type { Services } from '../../services.js';
import { logoutRefusalTenants, type SamlMessageInput } from '../../sso/saml/slo.js';
import type { WebSession } from '../../sso/sessions.js';
import { cookieSettings } from '../complete-login.js';
import { clearSessionCookie, readCookie } from '../cookies.js';
import { publicRouteRule, rateLimit } from '../rate-limit.js';
import { browserRoute } from '../request-context.js';
import { OP_SESSION_COOKIES } from '../../provider/provider.js';
import { signedOutPage } from '../views.js';

const rawQueryOf = (req: Request): string => (req.originalUrl.includes('?') ? req.originalUrl.slice(req.originalUrl.indexOf('?') + 1) : '');

export function logoutRoutes(s: Services): Router {
  const router = Router();
  const cookie = cookieSettings(s);
  const allowHttp = s.config.publicUrl.startsWith('http://');
  // A logout message is at most 64 KiB of XML (slo.ts), 88 KiB as base64.
  const form = express.urlencoded({ extended: false, limit: '96kb', parameterLimit: 10 });
  // Per-client limits (config rateLimits), before the form is parsed: one budget per family.
  const logoutLimit = rateLimit(s, publicRouteRule(s.config, 'logout'));
  const samlLogoutLimit = rateLimit(s, publicRouteRule(s.config, 'saml-logout'));

  /** The allowed final hop (S-19), or null. */
  const finalTarget = (tenant: Tenant | null, raw: unknown): string | null =>
    tenant ? checkLogoutRedirect(raw, tenant.logoutRedirectDomains, allowHttp) : null;

  const endCookieSession = async (req: Request, res: Response, by: string): Promise<WebSession | null> => {
    const session = await s.sessions.destroy(readCookie(req, cookie.name));
    clearSessionCookie(res, cookie);
    if (session) {
      await s.audit.record({ type: 'session.ended', domain: session.domain, actor: `member:${session.memberId}`, requestId: res.locals.requestId, data: { by } });
    }
    return session;
  };

  /**
   * S-19: the OP session of this browser (oidc-provider's session cookie) ends too, so a service that
   * starts an OIDC login next is sent to the IdP again; its services are told by back-channel logout.
   * With `domain`, only a session of that tenant's member.
   */
  const endOpSession = async (req: Request, res: Response, domain?: string): Promise<void> => {
    const id = readCookie(req, OP_SESSION_COOKIES[0]);
    // oidc-provider's session ids are nanoids; anything else names no session.
    if (!id || !/^[A-Za-z0-9_-]{16,64}$/.test(id)) return;
    if (await s.opRevocation.endSession(id, { domain })) {
      for (const name of OP_SESSION_COOKIES) clearSessionCookie(res, { name, secure: cookie.secure });
    }
  };

  const land = (res: Response, target: string | null): void => {
    if (target) res.redirect(302, target);
    else res.type('html').send(signedOutPage());
  };

  // S-19: end the session; then SAML single logout, or the tenant's logoutUrl, or the final hop.
  router.get('/d/logout', browserRoute, logoutLimit, async (req: Request, res: Response) => {
    const session = await endCookieSession(req, res, 'logout');
    await endOpSession(req, res);
    const domain = session?.domain ?? TenantRepository.normaliseDomain(req.query.domain);
    const tenant = domain ? await s.tenants.find(domain) : null;
    const target = finalTarget(tenant, req.query.redirect_uri);
    if (tenant && session && s.samlLogout.canStart(tenant, session)) {
      // The LogoutRequest redirect names the final hop as `redirect_uri` too (outside the signed part of
      // the query, which covers SAMLRequest, RelayState and SigAlg), for IdPs that end there themselves.
      const url = await s.samlLogout.start(tenant, session, target);
      res.redirect(302, `${url}&redirect_uri=${encodeURIComponent(target ?? `${s.config.publicUrl}/d/signed-out`)}`);
      return;
    }
    if (tenant?.sso.enabled && tenant.sso.logoutUrl) {
      const url = new URL(tenant.sso.logoutUrl);
      url.searchParams.set('redirect_uri', target ?? `${s.config.publicUrl}/d/signed-out`);
      res.redirect(302, url.href);
      return;
    }
    land(res, target);
  });

  router.get('/d/signed-out', (_req: Request, res: Response) => {
    res.type('html').send(signedOutPage());
  });

  // S-20: the IdP signed the user out and sends the browser here.
  router.get('/view/oauth/sso/logout', browserRoute, logoutLimit, async (req: Request, res: Response) => {
    const domain = TenantRepository.normaliseDomain(req.query.domain);
    const tenant = domain ? await s.tenants.find(domain) : null;
    const current = await s.sessions.find(readCookie(req, cookie.name));
    // Only this tenant's session ends; a session of another tenant in the same browser stays.
    if (tenant && current?.domain === tenant.domain) await endCookieSession(req, res, 'idp_logout');
    if (tenant) await endOpSession(req, res, tenant.domain);
    land(res, finalTarget(tenant, req.query.redirect_uri));
  });

  const sloInput = (req: Request): SamlMessageInput => ({
    method: req.method,
    rawQuery: rawQueryOf(req),
    body: (req.body ?? {}) as Record<string, unknown>,
  });

  /**
   * A refused logout message goes to the trail of each tenant it concerns (its logout transaction's,
   * or those registered with the IdP it names), with its private reason; to the global trail when no
   * tenant is known. The browser's page says only that the message was refused.
   */
  const auditSloRefusal = async (req: Request, res: Response, err: unknown, type: string): Promise<void> => {
    if (!(err instanceof AppError)) return;
    const base = { type, actor: 'idp', requestId: res.locals.requestId, ip: req.ip, reason: err.reason ?? err.code };
    const domains = logoutRefusalTenants(err);
    if (domains.length === 0) await s.audit.record(base);
    for (const domain of domains) await s.audit.record({ ...base, domain });
  };

  // S-13: IdP-initiated LogoutRequest (HTTP-Redirect with a detached signature, or HTTP-POST with an enveloped one).
  const idpLogout = async (req: Request, res: Response): Promise<void> => {
    // Read the browser's own session first: the logout below may end it server-side.
    const current = await s.sessions.find(readCookie(req, cookie.name));
    let result;
    try {
      result = await s.samlLogout.receiveRequest(sloInput(req));
    } catch (err) {
      await auditSloRefusal(req, res, err, 'saml_logout.rejected');
      throw err;
    }
    res.locals.domain = result.tenant.domain;
    if (current && current.domain === result.tenant.domain && current.memberId === result.memberId) await endCookieSession(req, res, 'idp_slo');
    // The member's OP sessions (every browser) end with the IdP session; their services are told.
    if (result.memberId) await s.opRevocation.endSessionsOfMember(result.tenant.domain, result.memberId);
    // A LogoutRequest that names an allowed `redirect_uri` (the tenant's logoutRedirectDomains) ends
    // there; otherwise the signed LogoutResponse goes back to the IdP (or, with no SLO URL, the signed-out page).
    const named = req.query.redirect_uri ?? (req.body as Record<string, unknown> | undefined)?.redirect_uri;
    const endsAt = named === undefined ? null : finalTarget(result.tenant, named);
    await s.audit.record({ type: 'saml_logout.received', domain: result.tenant.domain, actor: 'idp', requestId: res.locals.requestId, data: { sessionsEnded: result.ended, ...(endsAt ? { endedAtRedirectUri: true } : {}) } });
    land(res, endsAt ?? result.responseUrl);
  };
  router.get('/saml2/sp/slo', browserRoute, samlLogoutLimit, idpLogout);
  router.post('/saml2/sp/slo', browserRoute, samlLogoutLimit, form, idpLogout);

  // S-13: the IdP's LogoutResponse to our LogoutRequest; the final hop only within logoutRedirectDomains.
  const sloCallback = async (req: Request, res: Response): Promise<void> => {
    let result;
    try {
      result = await s.samlLogout.finish(sloInput(req));
    } catch (err) {
      await auditSloRefusal(req, res, err, 'saml_logout_response.rejected');
      throw err;
    }
    res.locals.domain = result.tenant.domain;
    await s.audit.record({ type: 'saml_logout.completed', domain: result.tenant.domain, actor: 'idp', requestId: res.locals.requestId, data: { idpSuccess: result.success } });
    // The target was checked when the logout started; check again against today's list.
    land(res, finalTarget(result.tenant, result.target));
  };
  router.get('/saml2/sp/slo/callback', browserRoute, samlLogoutLimit, sloCallback);
  router.post('/saml2/sp/slo/callback', browserRoute, samlLogoutLimit, form, sloCallback);

  return router;
}
