import { randomBytes, timingSafeEqual } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import express, { Router, type Request, type Response } from 'express';
import type { Clock } from '../domain/clock.js';
import { TenantRepository } from '../domain/tenants.js';
import { AppError } from '../errors/index.js';
import { browserRoute } from '../http/request-context.js';
import { esc, page } from '../http/views.js';
import { NS, attr, firstChild, parseUntrustedXml, plainText } from '../sso/saml/xml.js';
import { buildSamlResponseXml, signSamlResponse } from './saml-response.js';

export interface DemoIdpUser {
  username: string;
  password: string;
  /** What the IdP asserts as NameID (the tenant maps it by external key or account). */
  nameId: string;
}

export interface DemoSamlIdpOptions {
  publicUrl: string;
  privateKey: string;
  certificate: string;
  users: readonly DemoIdpUser[];
  clock: Clock;
  /**
   * CSP sources of every place a browser may be sent after posting an answer to the ACS of `domain`:
   * the tenant's allowed service origins and default service URL, the OP clients' redirect URIs. See
   * the auto-post page below.
   */
  landingsAfterAcs(domain: string): Promise<readonly string[]>;
}

/**
 * A redirect URI or service URL as a CSP source: its origin for http(s), its scheme (`app.example:`) for
 * an app's custom scheme; null for anything else.
 */
export function cspSourceOf(url: string): string | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  if (parsed.protocol === 'https:' || parsed.protocol === 'http:') return parsed.origin;
  return /^[a-z][a-z0-9+.-]*:$/.test(parsed.protocol) ? parsed.protocol : null;
}

export const demoSamlIdpEntityId = (publicUrl: string): string => `${publicUrl}/demo-idp/saml`;

interface ParsedRequest {
  id: string;
  acsUrl: string;
  spEntityId: string;
}

function parseAuthnRequest(encoded: unknown, publicUrl: string, deflated: boolean): ParsedRequest {
  if (typeof encoded !== 'string' || encoded.length > 20_000) throw new AppError('bad_request', { detail: 'SAMLRequest missing' });
  let xml: string;
  try {
    const bytes = Buffer.from(encoded, 'base64');
    xml = (deflated ? inflateRawSync(bytes, { maxOutputLength: 100_000 }) : bytes).toString('utf8');
  } catch {
    throw new AppError('bad_request', { detail: 'SAMLRequest is not deflated base64' });
  }
  let root: Element;
  try {
    root = parseUntrustedXml(xml).documentElement;
  } catch {
    throw new AppError('bad_request', { detail: 'SAMLRequest is not XML' });
  }
  if (root.namespaceURI !== NS.protocol || root.localName !== 'AuthnRequest') throw new AppError('bad_request', { detail: 'not an AuthnRequest' });
  const id = attr(root, 'ID');
  const acsUrl = attr(root, 'AssertionConsumerServiceURL');
  const issuer = firstChild(root, NS.assertion, 'Issuer');
  const spEntityId = issuer ? plainText(issuer) : null;
  // The demo IdP signs only for this gateway: it is never a signing oracle for other sites.
  if (!id || !acsUrl || !spEntityId || !acsUrl.startsWith(`${publicUrl}/acs/`)) {
    throw new AppError('bad_request', { detail: 'AuthnRequest is not for this gateway' });
  }
  return { id, acsUrl, spEntityId };
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * A small SAML IdP for the demo (`npm start`): HTTP-Redirect AuthnRequest in, a login form, a signed
 * HTTP-POST Response out. Mounted only outside production; its key is a dev-only key in config/dev-only.
 */
export function demoSamlIdpRouter(options: DemoSamlIdpOptions): Router {
  const router = Router();
  const entityId = demoSamlIdpEntityId(options.publicUrl);

  const loginForm = (req: ParsedRequest, samlRequest: string, relayState: string, error?: string): string =>
    page(
      'Demo IdP sign-in',
      `<h1>Demo identity provider</h1><p>Signing in to <code>${esc(req.spEntityId)}</code>. This IdP exists only for the demo.</p>
${error ? `<p role="alert"><strong>${esc(error)}</strong></p>` : ''}
<form method="post" action="/demo-idp/saml/sso">
<input type="hidden" name="SAMLRequest" value="${esc(samlRequest)}"><input type="hidden" name="RelayState" value="${esc(relayState)}">
<label for="username">User name</label><input id="username" name="username" type="text" autocomplete="username" autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password">
<p><button type="submit">Sign in</button></p></form>`,
    );

  router.get('/demo-idp/saml/sso', browserRoute, (req: Request, res: Response) => {
    const samlRequest = req.query.SAMLRequest;
    const parsed = parseAuthnRequest(samlRequest, options.publicUrl, true);
    const relayState = typeof req.query.RelayState === 'string' ? req.query.RelayState : '';
    res.type('html').send(loginForm(parsed, samlRequest as string, relayState));
  });

  router.post('/demo-idp/saml/sso', browserRoute, express.urlencoded({ extended: false, limit: '64kb' }), async (req: Request, res: Response) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const parsed = parseAuthnRequest(body.SAMLRequest, options.publicUrl, true);
    const relayState = typeof body.RelayState === 'string' ? body.RelayState : '';
    const user = options.users.find((u) => u.username === body.username);
    if (!user || typeof body.password !== 'string' || !safeEqual(user.password, body.password)) {
      res.status(401).type('html').send(loginForm(parsed, body.SAMLRequest as string, relayState, 'Unknown user name or wrong password.'));
      return;
    }
    const xml = buildSamlResponseXml({
      issuer: entityId,
      destination: parsed.acsUrl,
      inResponseTo: parsed.id,
      recipient: parsed.acsUrl,
      audience: parsed.spEntityId,
      nameId: user.nameId,
      now: options.clock.now(),
    });
    const signed = signSamlResponse(xml, { privateKey: options.privateKey, certificate: options.certificate, sign: 'both' });
    const nonce = randomBytes(16).toString('base64');
    // Chromium applies `form-action` to every redirect that follows the form post, not only to the
    // form's own action: the ACS answers 303 to the login's target (a service, usually on another
    // origin) or to the OP's interaction, which redirects to an OP client's redirect URI. So the
    // directive lists the ACS and each of those places (a real IdP, which cannot know them, sets none).
    const domain = TenantRepository.normaliseDomain(parsed.acsUrl.slice(`${options.publicUrl}/acs/`.length));
    const formAction = new Set([options.publicUrl, ...(domain ? await options.landingsAfterAcs(domain) : [])]);
    res.setHeader(
      'Content-Security-Policy',
      `default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-${nonce}'; form-action ${[...formAction].join(' ')}; frame-ancestors 'none'; base-uri 'none'`,
    );
    res.type('html').send(
      page(
        'Continue',
        `<form id="post" method="post" action="${esc(parsed.acsUrl)}">
<input type="hidden" name="SAMLResponse" value="${esc(Buffer.from(signed).toString('base64'))}">
<input type="hidden" name="RelayState" value="${esc(relayState)}">
<h1>Signed in at the demo IdP</h1><p>Taking you back to the service.</p><button type="submit">Continue</button></form>
<script nonce="${nonce}">document.getElementById('post').submit()</script>`,
      ),
    );
  });

  router.get('/demo-idp/saml/metadata', (_req: Request, res: Response) => {
    const body = options.certificate.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, '');
    res.type('application/samlmetadata+xml').send(
      `<?xml version="1.0"?><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="${esc(entityId)}">` +
        `<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">` +
        `<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>${body}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>` +
        `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${esc(options.publicUrl)}/demo-idp/saml/sso"/>` +
        `</md:IDPSSODescriptor></md:EntityDescriptor>`,
    );
  });

  return router;
}
