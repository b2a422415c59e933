import { randomBytes } from 'node:crypto';
import type { Request, Response } from 'express';
import type { Tenant } from '../domain/tenant.js';
import type { Services } from '../services.js';
import { buildAuthnRequest, type AuthnRequestMessage } from '../sso/saml/authn-request.js';
import { requireSamlSettings, samlEntryPoint } from '../sso/saml/options.js';
import { BROWSER_BINDING_RE, newBrowserBinding, type ClientKind } from '../sso/transactions.js';
import { LOGIN_BINDING_COOKIE, loginBindingCookieSettings, readCookie, setLoginBindingCookie, type LoginBindingCookieSettings } from './cookies.js';
import { esc, page } from './views.js';

/** Where a login start sends the browser: a redirect, or (SAML HTTP-POST binding) a form it posts to the IdP. */
export type LoginStep = { kind: 'redirect'; location: string } | { kind: 'post'; action: string; fields: Readonly<Record<string, string>> };

export interface LoginStart {
  /** Already checked (S-5) or built by the gateway itself (an OP interaction). */
  target: string;
  clientKind: ClientKind;
  sessionKey?: string;
  worksId?: string;
  /**
   * An administrator's test sign-in: the login goes to the tenant's configured IdP even while SSO is
   * off, and the transaction carries this id (the ACS / callback record the outcome instead of a session).
   */
  testSignInId?: string;
}

const bindingSettings = new WeakMap<Services['config'], LoginBindingCookieSettings>();

/** The login binding cookie's attributes for this gateway (worked out once: /d/login is a hot path). */
export function loginBindingCookieOf(s: Services): LoginBindingCookieSettings {
  let settings = bindingSettings.get(s.config);
  if (!settings) {
    settings = loginBindingCookieSettings(s.config.publicUrl, s.config.loginTransaction.ttlSeconds);
    bindingSettings.set(s.config, settings);
  }
  return settings;
}

/**
 * Where the browser goes to sign in to a tenant: its SAML IdP (AuthnRequest), its OAuth/OIDC IdP, or,
 * without SSO, the password page (S-4). Used by /d/login and by the OP's interactions (O-2).
 *
 * Every login transaction is bound to the browser that starts it: the browser's login binding cookie
 * (reused when it already has a well-formed one, so two tabs can log in at once; else a new random
 * value) is set on this response, and the transaction keeps its digest. The ACS and the OAuth callback
 * accept the transaction only from a browser that carries the same value.
 */
export async function startLogin(s: Services, req: Request, res: Response, tenant: Tenant, input: LoginStart): Promise<LoginStep> {
  if (!tenant.sso.enabled && input.testSignInId === undefined) {
    return { kind: 'redirect', location: `/d/password-login/${tenant.domain}?${new URLSearchParams({ accessUrl: input.target }).toString()}` };
  }
  const current = readCookie(req, LOGIN_BINDING_COOKIE);
  const browserBinding = current !== undefined && BROWSER_BINDING_RE.test(current) ? current : newBrowserBinding();
  const step: LoginStep =
    tenant.sso.type === 'oauth' ? { kind: 'redirect', location: await s.oauthLogin.start(tenant, { ...input, browserBinding }) } : samlStep(await startSamlLogin(s, tenant, input, browserBinding));
  // Only once the transaction exists: a refused start leaves no cookie behind. Max-Age restarts with each login.
  setLoginBindingCookie(res, loginBindingCookieOf(s), browserBinding);
  return step;
}

const samlStep = (m: AuthnRequestMessage): LoginStep => (m.binding === 'post' ? { kind: 'post', action: m.action, fields: m.fields } : { kind: 'redirect', location: m.location });

/**
 * Answers a login step: 302 to its location, or (HTTP-POST binding, S-7a) a page whose form posts the
 * AuthnRequest to the IdP. The form submits itself through a script allowed by a per-response nonce
 * (the page's CSP allows no other script); without JavaScript its visible button does the same.
 */
export function sendLoginStep(res: Response, step: LoginStep): void {
  if (step.kind === 'redirect') {
    res.redirect(302, step.location);
    return;
  }
  const nonce = randomBytes(16).toString('base64');
  // As every page's CSP (request-context.ts), plus this response's one script. form-action stays open:
  // browsers apply it to the redirects that follow the post too, and an IdP may redirect anywhere.
  res.setHeader('Content-Security-Policy', `default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-${nonce}'; form-action *; frame-ancestors 'none'; base-uri 'none'`);
  const inputs = Object.entries(step.fields)
    .map(([name, value]) => `<input type="hidden" name="${esc(name)}" value="${esc(value)}">`)
    .join('\n');
  res
    .status(200)
    .type('html')
    .send(
      page(
        'Continue to sign in',
        `<form id="saml-post" method="post" action="${esc(step.action)}">
${inputs}
<h1>Continue to sign in</h1><p>You are being taken to your organisation's sign-in page. If nothing happens, press the button.</p>
<button type="submit">Continue</button></form>
<script nonce="${nonce}">document.getElementById('saml-post').submit()</script>`,
      ),
    );
}

async function startSamlLogin(s: Services, tenant: Tenant, input: LoginStart, browserBinding: string): Promise<AuthnRequestMessage> {
  const requestId = `_${randomBytes(20).toString('hex')}`;
  // Check the settings first: a misconfigured tenant must not leave transactions behind.
  requireSamlSettings(tenant);
  samlEntryPoint(tenant, input.clientKind);
  const txn = await s.transactions.create(
    tenant,
    { ssoType: 'saml', target: input.target, clientKind: input.clientKind, requestId, sessionKey: input.sessionKey, ...(input.testSignInId ? { testSignInId: input.testSignInId } : {}) },
    browserBinding,
  );
  return buildAuthnRequest({ tenant, sp: s.sp, clientKind: input.clientKind, requestId, relayState: txn.id, now: s.clock.now(), worksId: input.worksId, signingKey: s.sp.signing?.key });
}
