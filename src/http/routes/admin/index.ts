import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { AppError } from '../../../errors/index.js';
import type { Services } from '../../../services.js';
import { rateLimit } from '../../rate-limit.js';
import { principalOf } from './context.js';
import { domainRoutes } from './domains.js';
import { externalKeyRoutes } from './external-keys.js';
import { mdmAdminRoutes } from './mdm.js';
import { memberRoutes } from './members.js';
import { buildOpenApi } from './openapi.js';
import { ssoAdminRoutes } from './sso.js';

/**
 * The admin API, `/admin/v1` (docs/spec.md §11): JSON, bearer keys (the operator key reaches everything, a tenant
 * key only its tenant), rate-limited per key, every change audited. The OpenAPI document of these
 * routes is docs/openapi.json.
 */
export function adminRouter(s: Services, extra: Array<(s: Services) => Router> = []): Router {
  const router = Router();

  // The API's own description is public (it holds no data).
  router.get('/openapi.json', (_req: Request, res: Response) => {
    res.json(buildOpenApi(s.config.publicUrl));
  });

  router.use(async (req: Request, res: Response, next: NextFunction) => {
    const header = req.get('authorization') ?? '';
    const match = /^Bearer ([\x21-\x7e]{1,200})$/.exec(header);
    const principal = match ? await s.adminKeys.resolve(match[1]) : null;
    if (!principal) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="idp-bridge admin"');
      throw new AppError('unauthorized', { detail: match ? 'unknown key' : 'no bearer key' });
    }
    res.locals.admin = principal;
    next();
  });
  router.use(
    rateLimit(s, {
      bucket: 'admin',
      limit: s.config.admin.rateLimitPerMinute,
      windowMs: 60_000,
      subject: (_req) => {
        const p = principalOf(_req.res!);
        return p.kind === 'operator' ? 'operator' : p.kind === 'tenant' ? p.keyId : `member:${p.memberId}`;
      },
    }),
  );
  router.use(express.json({ limit: '1mb', type: ['application/json', 'application/*+json'] }));

  router.use(domainRoutes(s));
  router.use(ssoAdminRoutes(s));
  router.use(memberRoutes(s));
  router.use(externalKeyRoutes(s));
  router.use(mdmAdminRoutes(s));
  for (const make of extra) router.use(make(s));
  return router;
}
