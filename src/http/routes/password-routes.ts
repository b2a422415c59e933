import { randomBytes, timingSafeEqual } from 'node:crypto';
import { recordTenantLogin } from '../../admin/domain-overview.js';
import { serialize } from 'cookie';
import express, { Router, type Request, type Response } from 'express';
import { checkAccessUrl } from '../../domain/access-url.js';
import type { Tenant } from '../../domain/tenant.js';
import { AppError } from '../../errors/index.js';
import type { Services } from '../../services.js';
import { PasswordLogin, refusalError } from '../../sso/password-login.js';
import { cookieSettings } from '../complete-login.js';
import { clearSessionCookie, readCookie, setSessionCookie, singleString } from '../cookies.js';
import { rateLimit } from '../rate-limit.js';
import { browserRoute } from '../request-context.js';
import { esc, page } from '../views.js';

// ---------------------------------------------------------------------------------------------
// CSRF for the gateway's own forms (password sign-in, invitation acceptance): a double-submit
// token. GET sets a random value in an HttpOnly, SameSite=Strict cookie scoped to /d/ and puts the
// same value in a hidden field; POST must carry both, equal. A cross-site page can neither read the
// cookie nor make the browser send it (Strict), so it cannot forge the pair. What the browser says
// about where the post comes from must agree (defence in depth, and the answer to the weakness of
// any double-submit token: a sibling subdomain — same site — can plant a cookie of its own):
// Sec-Fetch-Site, when sent, is same-origin (or none: the person's own action); Origin, when sent, is
// the gateway's, or `null` together with Sec-Fetch-Site same-origin (or from a browser that sends no
// Sec-Fetch-Site, where the token decides). Browsers send `Origin: null` on a same-origin form post
// when the page's referrer policy is no-referrer, after a redirect through another origin, and in
// some privacy modes; the gateway's pages say `Referrer-Policy: same-origin`, so that they normally
// send the real one.
// ---------------------------------------------------------------------------------------------

export const FORM_CSRF_COOKIE = 'idpb_csrf';
export const FORM_CSRF_FIELD = 'csrf';
const FORM_CSRF_MAX_AGE_S = 2 * 3600;
const CSRF_TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;

/** Where the form token cookie is sent: the gateway's own pages (/d/), or the console's operator sign-in (/console/auth/). */
export type FormTokenPath = '/d/' | '/console/auth/';

function csrfCookie(s: Services, value: string, maxAge: number, path: FormTokenPath): string {
  return serialize(FORM_CSRF_COOKIE, value, { httpOnly: true, sameSite: 'strict', secure: cookieSettings(s).secure, path, maxAge });
}

/** The token for a form being rendered: the browser's current one when it has one (other open tabs keep working), else a new one. */
export function issueFormToken(s: Services, req: Request, res: Response, path: FormTokenPath = '/d/'): string {
  const current = readCookie(req, FORM_CSRF_COOKIE);
  const token = current && CSRF_TOKEN_RE.test(current) ? current : randomBytes(32).toString('base64url');
  res.append('Set-Cookie', csrfCookie(s, token, FORM_CSRF_MAX_AGE_S, path));
  return token;
}

export function clearFormToken(s: Services, res: Response, path: FormTokenPath = '/d/'): void {
  res.append('Set-Cookie', csrfCookie(s, '', 0, path));
}

/**
 * Throws 403 `csrf_token_invalid` unless the posted token equals the cookie's, Sec-Fetch-Site (when
 * sent) is same-origin or none, and Origin (when sent) is ours — or `null` from the same origin.
 */
export function checkFormToken(s: Services, req: Request, posted: unknown): void {
  const site = req.get('sec-fetch-site');
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    throw new AppError('csrf_token_invalid', { detail: `form posted from another origin (Sec-Fetch-Site: ${site.slice(0, 20)})` });
  }
  const origin = req.get('origin');
  if (origin === 'null') {
    if (site !== undefined && site !== 'same-origin') throw new AppError('csrf_token_invalid', { detail: 'form posted with Origin: null, not from the same origin' });
  } else if (origin !== undefined && origin !== new URL(s.config.publicUrl).origin) {
    throw new AppError('csrf_token_invalid', { detail: 'form posted from a foreign origin' });
  }
  const cookie = readCookie(req, FORM_CSRF_COOKIE);
  if (!cookie || !CSRF_TOKEN_RE.test(cookie)) throw new AppError('csrf_token_invalid', { detail: 'no form token cookie' });
  if (typeof posted !== 'string' || !CSRF_TOKEN_RE.test(posted)) throw new AppError('csrf_token_invalid', { detail: 'no form token field' });
  if (!timingSafeEqual(Buffer.from(cookie), Buffer.from(posted))) throw new AppError('csrf_token_invalid', { detail: 'form token mismatch' });
}

// ---------------------------------------------------------------------------------------------

/** Per client IP, across tenants: password guessing and the scrypt cost behind it. */
export const PASSWORD_LOGIN_RATE_LIMIT = { bucket: 'password-login', limit: 30, windowMs: 60_000 } as const;

const DAY_MS = 86_400_000;

function loginFormPage(s: Services, tenant: Tenant, target: string, csrf: string): string {
  const note = tenant.sso.enabled
    ? `<p class="ref">${esc(tenant.name)} signs in with single sign-on. This page is only the super administrator's emergency sign-in; everyone else please <a href="/d/login/${esc(tenant.domain)}?${esc(new URLSearchParams({ accessUrl: target }).toString())}">sign in with single sign-on</a>.</p>`
    : '';
  return page(
    'Sign in',
    `<h1>Sign in to ${esc(tenant.name)}</h1>${note}
<form method="post" action="/d/password-login/${esc(tenant.domain)}">
<input type="hidden" name="${FORM_CSRF_FIELD}" value="${esc(csrf)}">
<input type="hidden" name="accessUrl" value="${esc(target)}">
<label for="account">Account</label><input type="text" id="account" name="account" autocomplete="username" autocapitalize="none" spellcheck="false" maxlength="254" required autofocus>
<label for="password">Password</label><input type="password" id="password" name="password" autocomplete="current-password" maxlength="1024" required>
<p><button type="submit">Sign in</button></p>
</form>
<p class="ref">After sign-in you continue to <code>${esc(target)}</code>.</p>`,
  );
}

/**
 * ID/password sign-in (S-4: tenants without SSO; S-23: the super admin's audited break-glass while
 * SSO is on). `GET` renders the form, `POST` checks it; the use case is sso/password-login.ts.
 */
export function passwordRoutes(s: Services): Router {
  const router = Router();
  const passwordLogin = new PasswordLogin(s.members, s.store, s.clock);
  const cookie = cookieSettings(s);
  const formUrl = (tenant: Tenant, target?: string): string =>
    `/d/password-login/${tenant.domain}${target ? `?${new URLSearchParams({ accessUrl: target }).toString()}` : ''}`;

  router.get('/d/password-login/:domain', browserRoute, async (req: Request, res: Response) => {
    const tenant = await s.tenants.load(req.params.domain);
    res.locals.domain = tenant.domain;
    // The raw value: a repeated accessUrl (an array) is refused, never silently replaced.
    const target = checkAccessUrl(req.query.accessUrl, s.accessUrlPolicy(tenant));
    if (tenant.sso.enabled && !tenant.superAdminBreakGlass) {
      res.locals.retryUrl = `/d/login/${tenant.domain}?${new URLSearchParams({ accessUrl: target }).toString()}`;
      throw new AppError('sso_enabled', { detail: 'password sign-in form while SSO is on and break-glass is off', message: 'This organisation signs in with single sign-on.' });
    }
    res.status(200).type('html').send(loginFormPage(s, tenant, target, issueFormToken(s, req, res)));
  });

  router.post(
    '/d/password-login/:domain',
    browserRoute,
    rateLimit(s, PASSWORD_LOGIN_RATE_LIMIT),
    express.urlencoded({ extended: false, limit: '8kb', parameterLimit: 10 }),
    async (req: Request, res: Response) => {
      const tenant = await s.tenants.load(req.params.domain);
      res.locals.domain = tenant.domain;
      res.locals.retryUrl = formUrl(tenant);
      const body = (req.body ?? {}) as Record<string, unknown>;
      checkFormToken(s, req, body[FORM_CSRF_FIELD]);
      const target = checkAccessUrl(body.accessUrl, s.accessUrlPolicy(tenant));
      res.locals.retryUrl = formUrl(tenant, target);
      const account = singleString(body.account);
      const password = singleString(body.password);
      if (!account || !password) throw new AppError('bad_request', { detail: 'account or password missing', message: 'Please enter your account and password.' });

      const outcome = await passwordLogin.login(tenant, account, password);
      if (!outcome.ok) {
        await s.audit.record({
          type: 'login.failed',
          domain: tenant.domain,
          actor: outcome.memberId ? `member:${outcome.memberId}` : 'anonymous',
          requestId: res.locals.requestId,
          ip: req.ip,
          reason: outcome.reason,
          data: { method: 'password', ssoEnabled: tenant.sso.enabled },
        });
        if (outcome.lockedNow) {
          res.locals.log.warn({ domain: tenant.domain, memberId: outcome.memberId ?? null }, 'password sign-in locked after repeated failures');
          await s.audit.record({
            type: 'login.locked',
            domain: tenant.domain,
            actor: outcome.memberId ? `member:${outcome.memberId}` : 'anonymous',
            requestId: res.locals.requestId,
            ip: req.ip,
            reason: 'too_many_failures',
            data: { method: 'password' },
          });
        }
        s.metrics.recordLogin(tenant.domain, 'password', outcome.lockedNow ? 'locked' : 'failure');
        await s.loginActivity.record(tenant.domain, 'password', 'failure', outcome.reason);
        await s.events.signIn(req, { domain: tenant.domain, result: 'refused', protocol: 'password', memberId: outcome.memberId, code: outcome.code, reason: outcome.reason });
        throw refusalError(tenant, outcome);
      }

      const { member, breakGlass } = outcome;
      // The tenant's login retention; a break-glass session is also held to the web session length.
      const retentionMs = tenant.loginRetentionDays * DAY_MS;
      const ttlMs = breakGlass ? Math.min(retentionMs, s.config.session.webTtlSeconds * 1000) : retentionMs;
      const previous = readCookie(req, cookie.name);
      if (previous) {
        await s.sessions.destroy(previous);
        clearSessionCookie(res, cookie);
      }
      const { id } = await s.sessions.create({ memberId: member.id, domain: tenant.domain, account: member.account, authMethod: 'password', clientKind: 'web' }, ttlMs);
      setSessionCookie(res, cookie, id, Math.floor(ttlMs / 1000));
      clearFormToken(s, res);
      if (breakGlass) {
        res.locals.log.warn({ domain: tenant.domain, memberId: member.id }, 'break-glass password sign-in of the super admin while SSO is on');
      }
      await s.audit.record({
        type: breakGlass ? 'login.break_glass' : 'login.succeeded',
        domain: tenant.domain,
        actor: `member:${member.id}`,
        requestId: res.locals.requestId,
        ip: req.ip,
        data: { method: 'password', clientKind: 'web', ssoEnabled: tenant.sso.enabled },
      });
      s.metrics.recordLogin(tenant.domain, 'password', 'success');
      await s.loginActivity.record(tenant.domain, 'password', 'success');
      await s.events.signIn(req, { domain: tenant.domain, result: 'succeeded', protocol: 'password', memberId: member.id });
      await recordTenantLogin(s, tenant.domain, res.locals.log);
      res.redirect(303, target);
    },
  );

  return router;
}
