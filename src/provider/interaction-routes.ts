import { Router, type Request, type Response } from 'express';
import type Provider from 'oidc-provider';
import { TenantRepository } from '../domain/tenants.js';
import { AppError } from '../errors/index.js';
import { cookieSettings } from '../http/complete-login.js';
import { readCookie } from '../http/cookies.js';
import { checkRateLimit, publicRouteRule } from '../http/rate-limit.js';
import { browserRoute } from '../http/request-context.js';
import { sendLoginStep, startLogin } from '../http/start-login.js';
import type { Services } from '../services.js';
import { toAccountId } from './account-id.js';
import { OP_PATH } from './provider.js';

/** The tenant an authorization request names: `domain=` or `login_hint=user@domain` (O-2). */
function tenantDomainOf(params: Record<string, unknown>): string | null {
  const fromDomain = TenantRepository.normaliseDomain(params.domain);
  if (fromDomain) return fromDomain;
  const hint = typeof params.login_hint === 'string' ? params.login_hint : '';
  const at = hint.lastIndexOf('@');
  return at > 0 ? TenantRepository.normaliseDomain(hint.slice(at + 1)) : null;
}

/**
 * The OP's interactions (O-2). Login: a live bridge session of the named tenant is reused; otherwise
 * the member signs in through the tenant's IdP (SAML, OAuth) or password login, and comes back here.
 * Consent: the suite's own clients are first-party, so the requested scopes are granted.
 */
export function interactionRoutes(s: Services, provider: Provider): Router {
  const router = Router();
  const loginStartRule = publicRouteRule(s.config, 'login-start');

  router.get(`${OP_PATH}/interaction/:uid`, browserRoute, async (req: Request, res: Response) => {
    let details;
    try {
      details = await provider.interactionDetails(req, res);
    } catch (err) {
      throw new AppError('login_transaction_invalid', { reason: 'op_interaction_unknown', cause: err });
    }
    if (details.uid !== req.params.uid) throw new AppError('login_transaction_invalid', { reason: 'op_interaction_mismatch' });

    if (details.prompt.name === 'login') {
      const domain = tenantDomainOf(details.params);
      const tenant = domain ? await s.tenants.find(domain) : null;
      if (!tenant) {
        await provider.interactionFinished(req, res, { error: 'login_required', error_description: 'unknown tenant: name it with domain= or login_hint=user@domain' }, { mergeWithLastSubmission: false });
        return;
      }
      res.locals.domain = tenant.domain;
      const session = await s.sessions.find(readCookie(req, cookieSettings(s).name));
      const member = session && session.domain === tenant.domain ? await s.members.findById(tenant.domain, session.memberId) : null;
      if (session && member?.status === 'in_use') {
        await provider.interactionFinished(req, res, { login: { accountId: toAccountId(tenant.domain, member.id) } }, { mergeWithLastSubmission: false });
        return;
      }
      // Starting a login stores a transaction: the login-start budget of GET /d/login counts it too.
      await checkRateLimit(s, loginStartRule, req, res);
      const worksId = typeof details.params.login_hint === 'string' && /^[\x21-\x7e]{1,256}$/.test(details.params.login_hint) ? details.params.login_hint : undefined;
      sendLoginStep(res, await startLogin(s, req, res, tenant, { target: `${s.config.publicUrl}${OP_PATH}/interaction/${details.uid}`, clientKind: 'web', worksId }));
      return;
    }

    if (details.prompt.name === 'consent') {
      const accountId = details.session?.accountId;
      if (!accountId) throw new AppError('login_transaction_invalid', { reason: 'op_consent_without_login' });
      const grant = new provider.Grant({ accountId, clientId: details.params.client_id });
      const missing = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      for (const [resource, scopes] of Object.entries(missing.missingResourceScopes ?? {})) grant.addResourceScope(resource, scopes.join(' '));
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
      return;
    }
    throw new AppError('bad_request', { detail: `unknown prompt ${details.prompt.name}` });
  });

  return router;
}
