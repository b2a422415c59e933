import { Router, type Request, type Response } from 'express';
import { TenantRepository } from '../../domain/tenants.js';
import { AppError } from '../../errors/index.js';
import { consoleCompleteUrl, type Services } from '../../services.js';
import { cookieSettings } from '../complete-login.js';
import { readCookie, setConsoleCookie, singleString } from '../cookies.js';
import { browserRoute } from '../request-context.js';

/** Why the console's sign-in page shows an error (`/console/?signInError=<code>`). */
export type ConsoleSignInError = 'not_admin' | 'not_signed_in';

/**
 * The employee session must have been made by the login this sign-in started: an older session (a day
 * long, or loginRetentionDays for password logins) must not mint console sessions, or the console's
 * absolute timeout would mean nothing. Ten minutes covers a slow IdP page and a typed password.
 */
export const CONSOLE_LOGIN_FRESHNESS_MS = 10 * 60_000;

/**
 * Console sign-in (docs/spec.md §11): the console eats the tenant's own login. `start` sends the browser
 * to `/d/login/{domain}` (SSO, or the password page when SSO is off) or `/d/password-login/{domain}`
 * (the S-23 break-glass path while SSO is on), with the accessUrl `<publicUrl>/console/auth/complete`
 * — an allowed target of every tenant, exactly that path. `complete` turns the employee session the
 * login just made into a console session for an `in_use` admin or super admin. The employee session
 * is kept: the administrator is also signed in to the suite as an employee, as with any login.
 */
export function consoleRoutes(s: Services): Router {
  const router = Router();

  router.get('/console/auth/start', browserRoute, async (req: Request, res: Response) => {
    const domain = TenantRepository.normaliseDomain(singleString(req.query.domain) ?? '');
    if (!domain) throw new AppError('tenant_not_found', { detail: 'console sign-in without a well-formed domain' });
    const tenant = await s.tenants.load(domain);
    res.locals.domain = tenant.domain;
    const method = req.query.method === undefined ? 'sso' : singleString(req.query.method);
    if (method !== 'sso' && method !== 'password') throw new AppError('bad_request', { detail: 'method must be sso or password' });
    const accessUrl = `${consoleCompleteUrl(s.config.publicUrl)}?${new URLSearchParams({ domain: tenant.domain }).toString()}`;
    const path = method === 'password' ? 'password-login' : 'login';
    res.redirect(302, `/d/${path}/${tenant.domain}?${new URLSearchParams({ accessUrl }).toString()}`);
  });

  router.get('/console/auth/complete', browserRoute, async (req: Request, res: Response) => {
    const refuse = (code: ConsoleSignInError): void => res.redirect(303, `/console/?signInError=${code}`);
    const domain = TenantRepository.normaliseDomain(singleString(req.query.domain) ?? '');
    const web = await s.sessions.find(readCookie(req, cookieSettings(s).name));
    if (!domain || !web || web.domain !== domain || web.clientKind !== 'web' || s.clock.now() - web.createdAt > CONSOLE_LOGIN_FRESHNESS_MS) {
      refuse('not_signed_in');
      return;
    }
    res.locals.domain = domain;
    const tenant = await s.tenants.load(domain);
    const member = await s.members.findById(domain, web.memberId);
    const actor = `member:${web.memberId}`;
    if (!member || member.status !== 'in_use' || (member.role !== 'admin' && member.role !== 'super_admin')) {
      await s.audit.record({
        type: 'console.sign_in_refused',
        domain,
        actor,
        requestId: res.locals.requestId,
        ip: req.ip,
        reason: !member ? 'member_deleted' : member.status !== 'in_use' ? 'member_not_active' : 'not_admin',
        data: { method: web.authMethod, role: member?.role ?? null },
      });
      refuse('not_admin');
      return;
    }
    const { cookieValue, session } = await s.consoleSessions.create({ domain, memberId: member.id, method: web.authMethod });
    setConsoleCookie(res, s.config.publicUrl, cookieValue, Math.floor(s.consoleSessions.absoluteMs / 1000));
    await s.audit.record({
      type: 'console.signed_in',
      domain,
      actor,
      requestId: res.locals.requestId,
      ip: req.ip,
      data: { sessionId: session.id, role: member.role, method: web.authMethod, breakGlass: web.authMethod === 'password' && tenant.sso.enabled },
    });
    res.redirect(303, '/console/');
  });

  return router;
}
