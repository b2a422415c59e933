import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { gatewayHealth } from '../../../admin/health.js';
import { OP_CLIENT_ID_RE } from '../../../provider/op-clients.js';
import type { Services } from '../../../services.js';
import { parseBody } from '../../validate.js';
import { auditAdmin, requireOperator } from './context.js';
import { registerAdminOperations } from './openapi.js';

const uriList = z.array(z.string().min(1).max(2000)).max(20);

const clientCreateSchema = z.strictObject({
  clientId: z.string().regex(OP_CLIENT_ID_RE, '3–100 letters, digits, dot, dash or underscore, starting with a letter or digit'),
  name: z.string().min(1).max(100),
  redirectUris: uriList.min(1),
  postLogoutRedirectUris: uriList.optional(),
  /** S-19: where the service receives OpenID Connect back-channel logout tokens (absolute http(s) URL; https in production). */
  backchannelLogoutUri: z.string().min(1).max(2000).optional(),
  /** How the service authenticates at the token endpoint; the public mobile app stays in the config file (its MDM checks key on it). */
  tokenEndpointAuthMethod: z.enum(['client_secret_basic', 'client_secret_post']).default('client_secret_basic'),
});

const clientPatchSchema = z.strictObject({
  name: z.string().min(1).max(100).optional(),
  redirectUris: uriList.min(1).optional(),
  postLogoutRedirectUris: uriList.optional(),
  /** null removes it. */
  backchannelLogoutUri: z.string().min(1).max(2000).nullable().optional(),
});

registerAdminOperations([
  {
    method: 'get',
    path: '/op-clients',
    summary:
      "The OP's service clients: `{clients: [{clientId, name, source: config|api, readOnly, redirectUris, postLogoutRedirectUris, backchannelLogoutUri, tokenEndpointAuthMethod, grantTypes, createdAt, updatedAt}]}`; config-file clients are read-only; never a secret",
    operatorOnly: true,
    success: 200,
    errors: ['forbidden'],
  },
  {
    method: 'post',
    path: '/op-clients',
    summary:
      'Add a confidential service client (authorization code + refresh token, exact redirect URIs): the answer carries `clientSecret`, shown once and stored sealed with the secret keys; every gateway process serves it at once',
    operatorOnly: true,
    body: clientCreateSchema,
    success: 201,
    errors: ['forbidden', 'conflict'],
  },
  {
    method: 'patch',
    path: '/op-clients/{clientId}',
    summary: "Change an API-made client's name, redirect URIs, post-logout redirect URIs or back-channel logout URI (config-file clients: 403)",
    operatorOnly: true,
    body: clientPatchSchema,
    success: 200,
    errors: ['forbidden', 'not_found'],
  },
  { method: 'delete', path: '/op-clients/{clientId}', summary: 'Delete an API-made client: its sign-ins and token requests stop at once (config-file clients: 403)', operatorOnly: true, success: 204, errors: ['forbidden', 'not_found'] },
  {
    method: 'get',
    path: '/health',
    summary:
      'Health at a glance: `{status, checkedAt, store: {status, mode, latencyMs, error}, workers: {serving, heartbeatSeconds, list}, certificates: {withinDays, expiring: [{domain, ssoEnabled, index, subject, notAfter, expired, daysLeft}]}, resumableRuns: [{domain, kind: sso_switch|external_key_import, startedAt, detail}], tenantsChecked, truncated}`',
    operatorOnly: true,
    success: 200,
    errors: ['forbidden'],
  },
]);

/** The operator's own routes: the OP's service clients and health at a glance (docs/spec.md §11). */
export function operatorRoutes(s: Services): Router {
  const router = Router();

  router.get('/op-clients', async (_req: Request, res: Response) => {
    requireOperator(res);
    res.json({ clients: await s.opClients.list() });
  });

  router.post('/op-clients', async (req: Request, res: Response) => {
    requireOperator(res);
    const body = parseBody(clientCreateSchema, req.body);
    const { client, clientSecret } = await s.opClients.create(body);
    await auditAdmin(s, req, res, { type: 'op_client.created', data: { clientId: client.clientId, redirectUris: client.redirectUris.length, authMethod: client.tokenEndpointAuthMethod } });
    res.status(201).json({ ...client, clientSecret });
  });

  router.patch('/op-clients/:clientId', async (req: Request, res: Response) => {
    requireOperator(res);
    const body = parseBody(clientPatchSchema, req.body);
    const client = await s.opClients.update(String(req.params.clientId), body);
    await auditAdmin(s, req, res, { type: 'op_client.updated', data: { clientId: client.clientId, fields: Object.keys(body).join(',') } });
    res.json(client);
  });

  router.delete('/op-clients/:clientId', async (req: Request, res: Response) => {
    requireOperator(res);
    const clientId = String(req.params.clientId);
    await s.opClients.remove(clientId);
    await auditAdmin(s, req, res, { type: 'op_client.deleted', data: { clientId } });
    res.status(204).end();
  });

  router.get('/health', async (_req: Request, res: Response) => {
    requireOperator(res);
    res.json(await gatewayHealth(s));
  });

  return router;
}

export const operatorBodies = { clientCreate: clientCreateSchema, clientPatch: clientPatchSchema };
