import { randomBytes } from 'node:crypto';
import express, { Router, type Request, type Response } from 'express';
import { checkAccessUrl } from '../../domain/access-url.js';
import { AppError } from '../../errors/index.js';
import { buildSamlOptions } from '../../sso/saml/options.js';
import { samlAuthorizeUrl } from '../../sso/saml/strategy.js';
import { buildSpMetadata } from '../../sso/saml/sp-metadata.js';
import { sessionTtlMs } from '../../sso/session-lifetime.js';
import type { ClientKind } from '../../sso/transactions.js';
import type { Services } from '../../services.js';
import { clearSessionCookie, readCookie, setSessionCookie, singleString } from '../cookies.js';
import { browserRoute } from '../request-context.js';
import { esc, page } from '../views.js';

const WORKS_ID_RE = /^[\x21-\x7e]{1,256}$/;

export function ssoRoutes(s: Services): Router {
  const router = Router();
  const cookieSettings = { name: s.config.session.cookieName, secure: s.config.publicUrl.startsWith('https://') };

  // S-4 … S-7: start a login at the tenant's IdP.
  router.get('/d/login/:domain', browserRoute, async (req: Request, res: Response) => {
    const tenant = await s.tenants.load(req.params.domain);
    res.locals.domain = tenant.domain;
    const target = checkAccessUrl(req.query.accessUrl, s.accessUrlPolicy(tenant));
    const worksId = req.query.worksId;
    if (worksId !== undefined && (typeof worksId !== 'string' || !WORKS_ID_RE.test(worksId))) {
      throw new AppError('bad_request', { detail: 'worksId is not a printable string of up to 256 characters' });
    }
    if (!tenant.sso.enabled) {
      const q = new URLSearchParams({ accessUrl: target });
      res.redirect(302, `/d/password-login/${tenant.domain}?${q.toString()}`);
      return;
    }
    if (tenant.sso.type !== 'saml') {
      throw new AppError('sso_misconfigured', { detail: `SSO type ${tenant.sso.type} is not served by this gateway version` });
    }
    const clientKind: ClientKind = 'web';
    const requestId = `_${randomBytes(20).toString('hex')}`;
    // Build the options first: a misconfigured tenant must not leave transactions behind.
    const options = buildSamlOptions({ tenant, sp: s.sp, clientKind, requestId, worksId });
    const txn = await s.transactions.create({ domain: tenant.domain, ssoType: 'saml', target, clientKind, requestId });
    res.redirect(302, await samlAuthorizeUrl(s.samlStrategy, options, txn.id));
  });

  // S-8: the assertion consumer.
  router.post(
    '/acs/:domain',
    browserRoute,
    express.urlencoded({ extended: false, limit: s.config.saml.maxResponseBytes, parameterLimit: 10 }),
    async (req: Request, res: Response) => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      let result;
      try {
        result = await s.acs.consume({ domain: String(req.params.domain), samlResponse: body.SAMLResponse, relayState: body.RelayState });
      } catch (err) {
        if (err instanceof AppError) {
          const domain = err.tenantDomain;
          res.locals.domain = domain;
          // A fresh start is the way out of a failed sign-in; the page offers it (no automatic loop).
          if (domain) res.locals.retryUrl = `/d/login/${domain}`;
          await s.audit.record({
            type: err.code === 'member_not_found' || err.code === 'member_not_active' ? 'login.failed' : 'saml_response.rejected',
            domain,
            actor: 'idp',
            requestId: res.locals.requestId,
            ip: req.ip,
            reason: err.reason ?? err.code,
          });
        }
        throw err;
      }
      const { tenant, member } = result;
      res.locals.domain = tenant.domain;
      const now = s.clock.now();
      const ttlMs = sessionTtlMs({
        clientKind: result.clientKind,
        setExpireTime: tenant.sso.setExpireTime,
        idpExpiresAt: result.sessionNotOnOrAfter,
        now,
        webTtlMs: s.config.session.webTtlSeconds * 1000,
        appTtlMs: s.config.session.appTtlSeconds * 1000,
      });
      // A new login always gets a new session id (no fixation): the old one ends.
      const previous = readCookie(req, cookieSettings.name);
      if (previous) {
        await s.sessions.destroy(previous);
        clearSessionCookie(res, cookieSettings);
      }
      const { id } = await s.sessions.create(
        {
          memberId: member.id,
          domain: tenant.domain,
          account: member.account,
          authMethod: 'saml',
          clientKind: result.clientKind,
          nameId: result.nameId,
          sessionIndex: result.sessionIndex,
        },
        ttlMs,
      );
      setSessionCookie(res, cookieSettings, id, Math.floor(ttlMs / 1000));
      await s.audit.record({
        type: 'login.succeeded',
        domain: tenant.domain,
        actor: `member:${member.id}`,
        requestId: res.locals.requestId,
        ip: req.ip,
        data: { method: 'saml', solicited: result.transaction !== null, clientKind: result.clientKind },
      });
      res.redirect(303, result.target ?? s.defaultServiceUrl(tenant));
    },
  );

  // S-11: SP metadata.
  router.get('/saml/metadata/:domain', async (req: Request, res: Response) => {
    const tenant = await s.tenants.load(req.params.domain);
    res.type('application/samlmetadata+xml').send(buildSpMetadata(s.sp, tenant));
  });

  // S-4: tenants without SSO sign in with ID and password (arrives with the admin API issue).
  router.get('/d/password-login/:domain', browserRoute, async (req: Request, res: Response) => {
    const tenant = await s.tenants.load(req.params.domain);
    const target = checkAccessUrl(singleString(req.query.accessUrl), s.accessUrlPolicy(tenant));
    res
      .status(200)
      .type('html')
      .send(
        page(
          'Sign in',
          `<h1>Sign in to ${esc(tenant.name)}</h1><p>${esc(tenant.domain)} does not use single sign-on. Password sign-in is not offered by this gateway yet; please contact your administrator.</p>
<p class="ref">After sign-in you would continue to <code>${esc(target)}</code>.</p>`,
        ),
      );
  });

  return router;
}
