import { Router, type Request, type Response } from 'express';
import { testSignInView } from '../../../admin/test-sign-ins.js';
import { AppError } from '../../../errors/index.js';
import type { Services } from '../../../services.js';
import { parseBody } from '../../validate.js';
import { actorOf, auditAdmin, requirePermission, scopedTenant } from './context.js';
import { completenessProblems, testSignInSchema } from './sso.js';

/** Test sign-ins at the tenant's configured IdP (the settings themselves are sso.ts's). */
export function ssoTestSignInRoutes(s: Services): Router {
  const router = Router();

  // A test sign-in at the configured IdP, whether SSO is on or not (the link is for the administrator's own browser).
  router.post('/domains/:domain/sso/test-sign-ins', async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    requirePermission(res, 'write');
    parseBody(testSignInSchema, req.body);
    const problems = completenessProblems({ ...tenant.sso, enabled: true }, 'is required to test signing in');
    if (problems.length) throw new AppError('validation_failed', { message: 'The SSO settings are not complete enough to test signing in.', details: problems, detail: problems.map((p) => p.path).join(',') });
    const { record, token } = await s.testSignIns.create(tenant.domain, actorOf(res));
    await auditAdmin(s, req, res, { type: 'sso.test_sign_in.started', domain: tenant.domain, data: { testSignInId: record.id, type: tenant.sso.type } });
    res.status(201).json({ id: record.id, url: `${s.config.publicUrl}/d/test-sign-in/${token}`, expiresAt: new Date(record.expiresAt).toISOString() });
  });

  router.get('/domains/:domain/sso/test-sign-ins/:id', async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    const record = await s.testSignIns.get(tenant.domain, String(req.params.id));
    if (!record) throw new AppError('not_found', { message: 'No such test sign-in (they are kept for an hour).' });
    res.json(testSignInView(record));
  });

  return router;
}
