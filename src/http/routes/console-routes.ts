import express, { Router, type Request, type Response } from 'express';
import { TenantRepository } from '../../domain/tenants.js';
import { AppError } from '../../errors/index.js';
import { consoleCompleteUrl, type Services } from '../../services.js';
import { cookieSettings } from '../complete-login.js';
import { readCookie, setConsoleCookie, singleString } from '../cookies.js';
import { rateLimit } from '../rate-limit.js';
import { browserRoute } from '../request-context.js';
import { esc, page } from '../views.js';
import { checkFormToken, clearFormToken, FORM_CSRF_FIELD, issueFormToken } from './password-routes.js';

/** Why the console's sign-in page shows an error (`/console/?signInError=<code>`). */
export type ConsoleSignInError = 'not_admin' | 'not_signed_in';

/**
 * The employee session must have been made by the login this sign-in started: an older session (a day
 * long, or loginRetentionDays for password logins) must not mint console sessions, or the console's
 * absolute timeout would mean nothing. Ten minutes covers a slow IdP page and a typed password.
 */
export const CONSOLE_LOGIN_FRESHNESS_MS = 10 * 60_000;

/** Per client IP: guesses at the operator key (each also audited). */
export const OPERATOR_SIGN_IN_RATE_LIMIT = { bucket: 'operator-sign-in', limit: 10, windowMs: 60_000 } as const;

const OPERATOR_FORM_PATH = '/console/auth/operator';

function operatorFormPage(csrf: string): string {
  return page(
    'Operator sign-in',
    `<h1>Operator sign-in</h1>
<p class="ref">The operator runs this gateway and belongs to no organisation. Administrators of an organisation <a href="/console/">sign in with their domain</a>.</p>
<form method="post" action="${OPERATOR_FORM_PATH}">
<input type="hidden" name="${FORM_CSRF_FIELD}" value="${esc(csrf)}">
<label for="operatorKey">Operator key</label><input type="password" id="operatorKey" name="operatorKey" autocomplete="current-password" maxlength="200" required autofocus>
<p><button type="submit">Sign in</button></p>
</form>`,
  );
}

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

  // The operator's way in: the operator key (config adminApiKey) typed into the gateway's own form.
  router.get(OPERATOR_FORM_PATH, browserRoute, (req: Request, res: Response) => {
    res.status(200).type('html').send(operatorFormPage(issueFormToken(s, req, res, '/console/auth/')));
  });

  router.post(
    OPERATOR_FORM_PATH,
    browserRoute,
    rateLimit(s, OPERATOR_SIGN_IN_RATE_LIMIT),
    express.urlencoded({ extended: false, limit: '4kb', parameterLimit: 5 }),
    async (req: Request, res: Response) => {
      res.locals.retryUrl = OPERATOR_FORM_PATH;
      const body = (req.body ?? {}) as Record<string, unknown>;
      checkFormToken(s, req, body[FORM_CSRF_FIELD]);
      const presented = singleString(body.operatorKey) ?? '';
      const principal = presented ? await s.adminKeys.resolve(presented) : null;
      if (principal?.kind !== 'operator') {
        await s.audit.record({
          type: 'console.sign_in_refused',
          actor: 'anonymous',
          requestId: res.locals.requestId,
          ip: req.ip,
          reason: !s.config.adminApiKey ? 'no_operator_key_configured' : presented ? 'operator_key_invalid' : 'operator_key_missing',
          data: { method: 'operator_key' },
        });
        throw new AppError('unauthorized', { detail: 'operator console sign-in with a wrong or missing key', message: 'That is not the operator key.' });
      }
      const { cookieValue, session } = await s.consoleSessions.createOperator();
      setConsoleCookie(res, s.config.publicUrl, cookieValue, Math.floor(s.consoleSessions.absoluteMs / 1000));
      clearFormToken(s, res, '/console/auth/');
      await s.audit.record({ type: 'console.signed_in', actor: 'operator', requestId: res.locals.requestId, ip: req.ip, data: { sessionId: session.id, method: 'operator_key' } });
      res.redirect(303, '/console/operator');
    },
  );

  return router;
}
