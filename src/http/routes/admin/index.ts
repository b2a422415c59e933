import express, { Router, type Request, type Response } from 'express';
import type { Services } from '../../../services.js';
import { rateLimit } from '../../rate-limit.js';
import { auditRoutes } from './audit.js';
import { principalOf } from './context.js';
import { domainConfigRoutes } from './domain-config.js';
import { domainRoutes } from './domains.js';
import { externalKeyRoutes } from './external-keys.js';
import { mdmAdminRoutes } from './mdm.js';
import { memberRoutes } from './members.js';
import { buildOpenApi } from './openapi.js';
import { operatorRoutes } from './operator.js';
import { scimTokenRoutes } from './scim-tokens.js';
import { adminAuthentication, sessionRoutes } from './session.js';
import { ssoSwitchAdminRoutes } from './sso-switch.js';
import { ssoTestSignInRoutes } from './sso-test-sign-ins.js';
import { ssoAdminRoutes } from './sso.js';

/**
 * The admin API, `/admin/v1` (docs/spec.md §11): JSON, bearer keys (the operator key reaches everything, a tenant
 * key only its tenant) or the console's session cookie (an administrator of one tenant, CSRF-checked),
 * rate-limited per key or member, every change audited. The OpenAPI document of these
 * routes is docs/openapi.json.
 */
export function adminRouter(s: Services, extra: Array<(s: Services) => Router> = []): Router {
  const router = Router();

  // The API's own description is public (it holds no data).
  router.get('/openapi.json', (_req: Request, res: Response) => {
    res.json(buildOpenApi(s.config.publicUrl));
  });

  router.use(adminAuthentication(s));
  router.use(
    rateLimit(s, {
      bucket: 'admin',
      limit: s.config.admin.rateLimitPerMinute,
      windowMs: 60_000,
      subject: (_req) => {
        const p = principalOf(_req.res!);
        return p.kind === 'operator' ? 'operator' : p.kind === 'tenant' ? p.keyId : `member:${p.domain}:${p.memberId}`;
      },
    }),
  );
  router.use(express.json({ limit: '1mb', type: ['application/json', 'application/*+json'] }));

  router.use(sessionRoutes(s));
  router.use(domainRoutes(s));
  router.use(auditRoutes(s));
  router.use(ssoAdminRoutes(s));
  router.use(ssoSwitchAdminRoutes(s));
  router.use(ssoTestSignInRoutes(s));
  router.use(memberRoutes(s));
  router.use(externalKeyRoutes(s));
  router.use(mdmAdminRoutes(s));
  router.use(operatorRoutes(s));
  router.use(domainConfigRoutes(s));
  router.use(scimTokenRoutes(s));
  for (const make of extra) router.use(make(s));
  return router;
}
