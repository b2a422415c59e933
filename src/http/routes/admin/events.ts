import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { AppError } from '../../../errors/index.js';
import type { Services } from '../../../services.js';
import { parseBody } from '../../validate.js';
import { auditAdmin, requirePermission, scopedTenant } from './context.js';
import { registerAdminOperations } from './openapi.js';

const pageQuery = z.object({
  after: z.string().max(40).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

const webhookBody = z.strictObject({ url: z.string().min(1).max(2000) });
const deliveriesQuery = z.object({ status: z.enum(['failed']).default('failed') });

registerAdminOperations([
  {
    method: 'get',
    path: '/domains/{domain}/events',
    summary:
      'The tenant\'s events, oldest first (kept audit.retentionDays): `sign_in.succeeded`, `sign_in.refused` {memberId?, protocol, code?, reason?, ip, userAgent} and `audit.<type>` for each audit entry. `after` (an event id: the previous page\'s `next`), `limit` 1–1000 (default 100) → {events, next}; an empty page keeps `next` (poll again with it)',
    success: 200,
  },
  { method: 'get', path: '/domains/{domain}/webhook', summary: 'The tenant\'s webhook: {url, createdAt, cursor, attempts, nextAttemptAt, lastError} (never the secret)', success: 200, errors: ['webhook_not_configured'] },
  {
    method: 'put',
    path: '/domains/{domain}/webhook',
    summary:
      'Set the webhook {url}: https (http outside production), a host the outbound policy admits. Answers {url, secret}: the secret (`whsec_…`) is shown once; a new one each PUT. Events from now on are POSTed in batches signed the Standard Webhooks way (webhook-id, webhook-timestamp, webhook-signature)',
    body: webhookBody,
    success: 200,
    errors: ['webhook_url_refused'],
  },
  { method: 'delete', path: '/domains/{domain}/webhook', summary: 'Remove the webhook, its delivery state and failed deliveries', success: 204, errors: ['webhook_not_configured'] },
  {
    method: 'get',
    path: '/domains/{domain}/webhook/deliveries',
    summary: '`status=failed`: the deliveries given up after events.webhook.maxAttempts, oldest first → {deliveries: [{id, eventIds, attempts, lastError, failedAt}]}',
    success: 200,
    errors: ['webhook_not_configured'],
  },
  {
    method: 'post',
    path: '/domains/{domain}/webhook/deliveries/{id}/redeliver',
    summary: 'Send a failed delivery again now (same webhook-id and events) → {delivered, error?}; delivered ones leave the failed list',
    success: 200,
    errors: ['webhook_not_configured', 'not_found'],
  },
]);

/** Events out (docs/spec.md §11): the pull API and the tenant's webhook. */
export function eventRoutes(s: Services): Router {
  const router = Router();

  router.get('/domains/:domain/events', async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    const q = parseBody(pageQuery, req.query);
    res.json(await s.events.page(tenant.domain, q.after, q.limit));
  });

  const configured = async (req: Request, res: Response): Promise<string> => {
    const tenant = await scopedTenant(s, req, res);
    if (!(await s.webhooks.get(tenant.domain))) throw new AppError('webhook_not_configured');
    return tenant.domain;
  };

  router.get('/domains/:domain/webhook', async (req: Request, res: Response) => {
    const domain = await configured(req, res);
    res.json(await s.webhooks.get(domain));
  });

  router.put('/domains/:domain/webhook', async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    requirePermission(res, 'write');
    const body = parseBody(webhookBody, req.body);
    const set = await s.webhooks.set(tenant.domain, body.url);
    // Origin and path only: a receiver's query string may carry its own token.
    const url = new URL(set.url);
    await auditAdmin(s, req, res, { type: 'webhook.set', domain: tenant.domain, data: { url: `${url.origin}${url.pathname}` } });
    res.setHeader('Cache-Control', 'no-store');
    res.json(set);
  });

  router.delete('/domains/:domain/webhook', async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    requirePermission(res, 'write');
    if (!(await s.webhooks.remove(tenant.domain))) throw new AppError('webhook_not_configured');
    await auditAdmin(s, req, res, { type: 'webhook.removed', domain: tenant.domain });
    res.status(204).end();
  });

  router.get('/domains/:domain/webhook/deliveries', async (req: Request, res: Response) => {
    const domain = await configured(req, res);
    parseBody(deliveriesQuery, req.query);
    res.json({ deliveries: await s.webhooks.failed(domain) });
  });

  router.post('/domains/:domain/webhook/deliveries/:id/redeliver', async (req: Request, res: Response) => {
    const domain = await configured(req, res);
    requirePermission(res, 'write');
    const result = await s.webhooks.redeliver(domain, String(req.params.id));
    await auditAdmin(s, req, res, { type: 'webhook.redelivered', domain, data: { deliveryId: String(req.params.id).slice(0, 100), delivered: result.delivered } });
    res.json(result);
  });

  return router;
}
