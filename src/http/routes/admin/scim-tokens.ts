import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { AppError } from '../../../errors/index.js';
import { scimBase } from '../../../scim/scim-users.js';
import type { Services } from '../../../services.js';
import { parseBody } from '../../validate.js';
import { auditAdmin, requirePermission, scopedTenant } from './context.js';
import { registerAdminOperations } from './openapi.js';

const createSchema = z.strictObject({ name: z.string().min(1).max(100) });

registerAdminOperations([
  { method: 'get', path: '/domains/{domain}/scim-tokens', summary: 'List the SCIM tokens of the domain: {scimBaseUrl, tokens: [{id, name, createdAt, rotatedAt}]} (never the tokens themselves)', success: 200 },
  {
    method: 'post',
    path: '/domains/{domain}/scim-tokens',
    summary: "Issue a SCIM bearer token for the domain's provisioning (super): {id, name, createdAt, rotatedAt, token, scimBaseUrl}; the token is shown once, only its SHA-256 is stored; at most 10 per domain",
    body: createSchema,
    success: 201,
    errors: ['forbidden', 'scim_token_limit'],
  },
  { method: 'post', path: '/domains/{domain}/scim-tokens/{tokenId}/rotate', summary: 'Rotate a SCIM token (super): a new secret for the same id, shown once; the old secret stops working at once', success: 200, errors: ['forbidden', 'not_found'] },
  { method: 'delete', path: '/domains/{domain}/scim-tokens/{tokenId}', summary: 'Revoke a SCIM token (super); requests with it answer 401 at once', success: 204, errors: ['forbidden', 'not_found'] },
]);

/** SCIM bearer tokens of a domain (docs/spec.md §14): issued, rotated and revoked by its super admin (or a full key, or the operator). */
export function scimTokenRoutes(s: Services): Router {
  const router = Router();
  const base = '/domains/:domain/scim-tokens';

  router.get(base, async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    res.json({ scimBaseUrl: scimBase(s.config.publicUrl, tenant.domain), tokens: await s.scimTokens.list(tenant.domain) });
  });

  router.post(base, async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    requirePermission(res, 'super');
    const body = parseBody(createSchema, req.body);
    const created = await s.scimTokens.issue(tenant.domain, body.name);
    await auditAdmin(s, req, res, { type: 'scim_token.created', domain: tenant.domain, data: { tokenId: created.id } });
    res.status(201).json({ ...created, scimBaseUrl: scimBase(s.config.publicUrl, tenant.domain) });
  });

  router.post(`${base}/:tokenId/rotate`, async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    requirePermission(res, 'super');
    const rotated = await s.scimTokens.rotate(tenant.domain, String(req.params.tokenId));
    if (!rotated) throw new AppError('not_found', { message: 'No such SCIM token.' });
    await auditAdmin(s, req, res, { type: 'scim_token.rotated', domain: tenant.domain, data: { tokenId: rotated.id } });
    res.json({ ...rotated, scimBaseUrl: scimBase(s.config.publicUrl, tenant.domain) });
  });

  router.delete(`${base}/:tokenId`, async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    requirePermission(res, 'super');
    if (!(await s.scimTokens.revoke(tenant.domain, String(req.params.tokenId)))) throw new AppError('not_found', { message: 'No such SCIM token.' });
    await auditAdmin(s, req, res, { type: 'scim_token.revoked', domain: tenant.domain, data: { tokenId: String(req.params.tokenId) } });
    res.status(204).end();
  });

  return router;
}
