import express, { Router, type Request, type Response } from 'express';
import { checkAccessUrl } from '../../domain/access-url.js';
import { AppError } from '../../errors/index.js';
import { SESSION_KEY_RE } from '../../sso/app-login-checks.js';
import { requireSamlSettings } from '../../sso/saml/options.js';
import { servedSpMetadata } from '../../sso/saml/sp-metadata-signature.js';
import type { ClientKind } from '../../sso/transactions.js';
import type { Services } from '../../services.js';
import { continueTrace, tracingActive, withSpan } from '../../observability/tracing.js';
import { auditRefusedLogin, completeLogin } from '../complete-login.js';
import { LOGIN_BINDING_COOKIE, readCookie } from '../cookies.js';
import { createSamlSecondGate } from '../passport-seam.js';
import { sendLoginStep, startLogin, type LoginStep } from '../start-login.js';
import { failedTestOutcome, finishTestSignIn, succeededTestOutcome } from '../test-sign-in.js';
import { publicRouteRule, rateLimit } from '../rate-limit.js';
import { browserRoute } from '../request-context.js';

const WORKS_ID_RE = /^[\x21-\x7e]{1,256}$/;

/** Optional query values that must be a single, well-formed string when present. */
function optionalParam(value: unknown, re: RegExp, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !re.test(value)) throw new AppError('bad_request', { detail: `${name} is malformed` });
  return value;
}

export function ssoRoutes(s: Services): Router {
  const router = Router();
  // Per-client limits (config rateLimits), before any tenant lookup, body parsing or write.
  const loginStartLimit = rateLimit(s, publicRouteRule(s.config, 'login-start'));

  // S-4 … S-7, S-14, S-16: start a login at the tenant's IdP.
  router.get('/d/login/:domain', browserRoute, loginStartLimit, async (req: Request, res: Response) => {
    const tenant = await s.tenants.load(req.params.domain);
    res.locals.domain = tenant.domain;
    const target = checkAccessUrl(req.query.accessUrl, s.accessUrlPolicy(tenant));
    const worksId = optionalParam(req.query.worksId, WORKS_ID_RE, 'worksId');
    // App logins (the mobile or desktop app's in-app browser) carry a sessionKey (S-14, S-18).
    const sessionKey = optionalParam(req.query.sessionKey, SESSION_KEY_RE, 'sessionKey');
    const clientKind: ClientKind = sessionKey ? 'app' : 'web';
    sendLoginStep(res, await startLogin(s, req, res, tenant, { target, clientKind, sessionKey, worksId }));
  });

  // An administrator's test sign-in (docs/spec.md §11): the single-use link from POST …/sso/test-sign-ins
  // starts a login at the tenant's configured IdP — as /d/login does, even while SSO is off — whose end
  // is recorded on the test instead of creating a session.
  router.get('/d/test-sign-in/:token', browserRoute, loginStartLimit, async (req: Request, res: Response) => {
    const test = await s.testSignIns.open(req.params.token);
    res.locals.domain = test.domain;
    await s.audit.record({ type: 'sso.test_sign_in.opened', domain: test.domain, actor: 'anonymous', requestId: res.locals.requestId, ip: req.ip, data: { testSignInId: test.id } });
    let step: LoginStep;
    try {
      const tenant = await s.tenants.load(test.domain);
      step = await startLogin(s, req, res, tenant, { target: `${s.config.publicUrl}/console/`, clientKind: 'web', testSignInId: test.id });
    } catch (err) {
      // Settings a login cannot start with (no certificate, no login URL, discovery failed …) are the test's outcome too.
      if (!(err instanceof AppError)) throw err;
      await finishTestSignIn(s, req, res, test.domain, test.id, failedTestOutcome(err), err.status);
      return;
    }
    sendLoginStep(res, step);
  });

  const secondGate = s.config.saml.secondGate ? createSamlSecondGate(s.sp, (outcome) => s.metrics.samlSecondGate.inc({ result: outcome }), s.samlSecondGateOptions) : null;

  // S-8: the SAML assertion consumer.
  router.post(
    '/acs/:domain',
    browserRoute,
    rateLimit(s, publicRouteRule(s.config, 'acs')),
    express.urlencoded({ extended: false, limit: s.config.saml.maxResponseBytes, parameterLimit: 10 }),
    inLoginTrace(s, 'saml.acs', (req) => [req.params.domain, (req.body as Record<string, unknown> | undefined)?.RelayState], async (req: Request, res: Response) => {
      const stopTimer = s.metrics.acsDuration.startTimer();
      res.on('finish', () => stopTimer({ result: res.locals.testSignIn ? 'test' : res.statusCode === 303 ? 'success' : 'failure' }));
      const body = (req.body ?? {}) as Record<string, unknown>;
      let result;
      try {
        result = await s.acs.consume({
          domain: String(req.params.domain),
          samlResponse: body.SAMLResponse,
          relayState: body.RelayState,
          // The transaction is accepted only from the browser that started it (login CSRF / session swap).
          browserBinding: readCookie(req, LOGIN_BINDING_COOKIE),
        });
        // Then the second, independent gate on what the strict verifier accepted (passport-saml).
        const accepted = result;
        if (secondGate) await withSpan('saml.second_gate', () => secondGate(req, res, accepted.tenant, { nameId: accepted.nameId, assertionId: accepted.assertionId, issuer: requireSamlSettings(accepted.tenant).idpEntityId, encryption: accepted.encryption }));
      } catch (err) {
        // A test sign-in's refusal (even one the second gate makes) is recorded on the test, not shown as a login error.
        const testSignInId = err instanceof AppError ? (err.testSignIn?.id ?? result?.transaction?.testSignInId) : undefined;
        const domain = err instanceof AppError ? (err.tenantDomain ?? result?.tenant.domain) : undefined;
        if (err instanceof AppError && testSignInId && domain) {
          res.locals.testSignIn = true;
          await finishTestSignIn(s, req, res, domain, testSignInId, failedTestOutcome(err, result?.nameId), err.status);
          return;
        }
        await auditRefusedLogin(s, req, res, err, 'saml_response.rejected', result?.tenant.domain);
        throw err;
      }
      res.locals.domain = result.tenant.domain;
      if (result.transaction?.testSignInId) {
        res.locals.testSignIn = true;
        await finishTestSignIn(s, req, res, result.tenant.domain, result.transaction.testSignInId, succeededTestOutcome(result.member, result.nameId));
        return;
      }
      await completeLogin(s, req, res, {
        tenant: result.tenant,
        member: result.member,
        method: 'saml',
        transaction: result.transaction,
        idpExpiresAt: result.sessionNotOnOrAfter,
        nameId: result.nameId,
        sessionIndex: result.sessionIndex,
      });
    }),
  );

  // S-17: the OAuth / OIDC redirect back from the IdP.
  router.get('/oauth/callback/:domain', browserRoute, rateLimit(s, publicRouteRule(s.config, 'oauth-callback')), inLoginTrace(s, 'oauth.callback', (req) => [req.params.domain, req.query.state], async (req: Request, res: Response) => {
    const tenant = await s.tenants.load(req.params.domain);
    res.locals.domain = tenant.domain;
    // While SSO is off, only an administrator's test sign-in comes back here (its transaction is looked at, not consumed).
    if (tenant.sso.type !== 'oauth' || (!tenant.sso.enabled && !(await s.transactions.testSignInOf(tenant.domain, req.query.state)))) {
      throw new AppError('sso_not_enabled', { detail: `OAuth callback for ${tenant.domain}, which does not use OAuth SSO` });
    }
    const rawQuery = req.originalUrl.includes('?') ? req.originalUrl.slice(req.originalUrl.indexOf('?') + 1) : '';
    let result;
    try {
      result = await s.oauthLogin.finish(tenant, req.query, rawQuery, readCookie(req, LOGIN_BINDING_COOKIE));
    } catch (err) {
      if (err instanceof AppError && err.testSignIn) {
        await finishTestSignIn(s, req, res, tenant.domain, err.testSignIn.id, failedTestOutcome(err), err.status);
        return;
      }
      await auditRefusedLogin(s, req, res, err, 'oauth_callback.rejected', tenant.domain);
      throw err;
    }
    if (!tenant.sso.enabled && !result.transaction.testSignInId) {
      throw new AppError('sso_not_enabled', { detail: `OAuth callback for ${tenant.domain}, whose SSO is off` });
    }
    if (result.transaction.testSignInId) {
      await finishTestSignIn(s, req, res, tenant.domain, result.transaction.testSignInId, succeededTestOutcome(result.member, result.userKey));
      return;
    }
    await completeLogin(s, req, res, { tenant, member: result.member, method: 'oauth', transaction: result.transaction, idpExpiresAt: result.idpExpiresAt });
  }));

  // S-18: the IdP asks, once, whether the app login in flight really comes from the app.
  router.post(
    '/login/check/:sessionKey',
    rateLimit(s, { bucket: 'session-check', limit: 30, windowMs: 60_000 }),
    express.urlencoded({ extended: false, limit: '2kb', parameterLimit: 5 }),
    async (req: Request, res: Response) => {
      const ok = await s.appLoginChecks.consume(req.params.sessionKey, (req.body as Record<string, unknown> | undefined)?.ssoType);
      if (ok) res.status(200).json({ message: 'success', code: '00' });
      else res.status(403).json({ message: 'Invalid access', code: '12' });
    },
  );

  // S-11: SP metadata.
  router.get('/saml/metadata/:domain', async (req: Request, res: Response) => {
    const tenant = await s.tenants.load(req.params.domain);
    res.type('application/samlmetadata+xml').send(servedSpMetadata(s.sp, tenant));
  });

  // S-13: the SP signing certificate as PEM, public like the metadata that already carries it, for IdP
  // administrators who register a certificate file (it verifies our AuthnRequests and logout messages).
  router.get('/saml/sp-certificate/:domain', async (req: Request, res: Response) => {
    const tenant = await s.tenants.load(req.params.domain);
    const certificate = s.sp.signing?.certificate;
    if (!certificate) throw new AppError('not_found', { message: 'This gateway has no SP signing certificate.', detail: 'saml.signing not configured' });
    res.attachment(`${tenant.domain}-sp-certificate.pem`).type('application/x-pem-file').send(certificate.endsWith('\n') ? certificate : `${certificate}\n`);
  });

  // GET|POST /d/password-login/{domain} (S-4: tenants without SSO): see password-routes.ts.

  return router;
}

/**
 * While tracing is on, runs the ACS or the OAuth callback in a span that continues the login's trace
 * (the traceparent its /d/login stored in the transaction, looked up without consuming it): one login,
 * one trace. Just the handler while tracing is off.
 */
function inLoginTrace(
  s: Services,
  name: string,
  transactionOf: (req: Request) => [domain: unknown, id: unknown],
  handler: (req: Request, res: Response) => Promise<void>,
): (req: Request, res: Response) => Promise<void> {
  return async (req, res) => {
    if (!tracingActive()) return handler(req, res);
    const [domain, id] = transactionOf(req);
    const tenantDomain = String(domain).toLowerCase().slice(0, 253);
    const parent = await s.transactions.traceParentOf(tenantDomain, id);
    return continueTrace(name, parent, () => handler(req, res), { 'idpb.domain': tenantDomain });
  };
}
