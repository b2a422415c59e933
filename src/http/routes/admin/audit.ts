import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { csvCell } from '../../../admin/csv.js';
import { AppError } from '../../../errors/index.js';
import type { AuditFilter, StoredAuditRecord } from '../../../observability/audit.js';
import { LOGIN_ACTIVITY_MAX_DAYS } from '../../../observability/login-activity.js';
import type { Services } from '../../../services.js';
import { parseBody } from '../../validate.js';
import { auditAdmin, scopedTenant } from './context.js';
import { responseWriter } from './external-keys.js';
import { registerAdminOperations } from './openapi.js';

const instant = z
  .string()
  .max(40)
  .refine((v) => /^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2})?)?$/.test(v) && !Number.isNaN(Date.parse(v)), 'must be an ISO 8601 date or date-time');

const filterSchema = z.object({
  type: z.string().max(100).regex(/^[a-z0-9_.]+\*?$/, 'is an event type, or a prefix ending in *').optional(),
  actor: z.string().max(200).optional(),
  member: z.string().max(200).optional(),
  result: z.enum(['success', 'failure']).optional(),
  from: instant.optional(),
  to: instant.optional(),
});

const listQuerySchema = filterSchema.extend({
  count: z.coerce.number().int().min(1).max(500).optional(),
  /** The API before paging: the newest `limit` events. */
  limit: z.coerce.number().int().min(1).max(500).optional(),
  cursor: z.string().max(100).optional(),
});

const activityQuerySchema = z.object({
  days: z.coerce.number().int().min(1).max(LOGIN_ACTIVITY_MAX_DAYS).default(30),
});

const FILTERS =
  '`type` (one type, or a prefix ending in `*`), `actor`, `member` (a member id: as actor or as the changed member), `result` success|failure (failure: the event carries a refusal reason), `from` / `to` (ISO 8601, inclusive)';

registerAdminOperations([
  {
    method: 'get',
    path: '/domains/{domain}/audit',
    summary: `The audit trail, newest first, kept audit.retentionDays (default 90): ${FILTERS}; \`count\` 1–500 (default 100; \`limit\` is its older name), \`cursor\` → {events, nextCursor}. At most 5,000 events are read per request: a page may be short, with a nextCursor`,
    success: 200,
  },
  { method: 'get', path: '/domains/{domain}/audit/{id}', summary: 'One audit event by its id (from the list)', success: 200, errors: ['not_found'] },
  {
    method: 'get',
    path: '/domains/{domain}/audit.csv',
    summary: `The audit trail as CSV, newest first, streamed (the same filters): id,at,type,actor,result,reason,ip,requestId,data — UTF-8 with a BOM, formula cells prefixed with an apostrophe; audited as audit.exported`,
    success: 200,
  },
  {
    method: 'get',
    path: '/domains/{domain}/activity',
    summary: `Sign-ins per UTC day for the last \`days\` (1–${LOGIN_ACTIVITY_MAX_DAYS}, default 30), today included: {from, to, days:[{date, saml, oauth, password: {success, failure}}], topRefusalReasons:[{reason, count}]}`,
    success: 200,
  },
]);

function filterOf(q: z.infer<typeof filterSchema>): AuditFilter {
  const filter: AuditFilter = {};
  if (q.type) filter.type = q.type;
  if (q.actor) filter.actor = q.actor;
  if (q.member) filter.member = q.member;
  if (q.result) filter.result = q.result;
  if (q.from) filter.from = Date.parse(q.from);
  // A bare date as `to` means the whole day.
  if (q.to) filter.to = Date.parse(q.to) + (q.to.length === 10 ? 24 * 3600_000 - 1 : 0);
  if (filter.from !== undefined && filter.to !== undefined && filter.from > filter.to) {
    throw new AppError('validation_failed', { details: [{ path: 'to', message: 'must not be before from' }], detail: 'audit range reversed' });
  }
  return filter;
}

const BOM = '\uFEFF';
const CSV_HEADER = 'id,at,type,actor,result,reason,ip,requestId,data\r\n';

function csvRow(r: StoredAuditRecord): string {
  const cells = [r.id, r.at, r.type, r.actor, r.reason === undefined ? 'success' : 'failure', r.reason ?? '', r.ip ?? '', r.requestId ?? '', r.data ? JSON.stringify(r.data) : ''];
  return `${cells.map(csvCell).join(',')}\r\n`;
}

/**
 * The audit trail and sign-in activity of a tenant (docs/spec.md §11), for every principal that may
 * read the tenant (an admin, a super admin, a key of either scope, the operator).
 */
export function auditRoutes(s: Services): Router {
  const router = Router();

  router.get('/domains/:domain/audit', async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    const q = parseBody(listQuerySchema, req.query);
    const page = await s.audit.page(tenant.domain, filterOf(q), { count: q.count ?? q.limit ?? 100, cursor: q.cursor });
    res.json(page);
  });

  router.get('/domains/:domain/audit.csv', async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    const filter = filterOf(parseBody(filterSchema, req.query));
    res.status(200);
    res.setHeader('Content-Type', 'text/csv; charset=utf-8');
    res.setHeader('Content-Disposition', `attachment; filename="audit-${tenant.domain}.csv"`);
    res.setHeader('Cache-Control', 'no-store');
    const write = responseWriter(res);
    await write(BOM + CSV_HEADER);
    // One batch of rows per write: a few hundred events at a time, never the whole range.
    const rows = await s.audit.forEach(tenant.domain, filter, (batch) => write(batch.map(csvRow).join('')));
    res.end();
    await auditAdmin(s, req, res, { type: 'audit.exported', domain: tenant.domain, data: { rows, filter: JSON.stringify(filter) } });
  });

  router.get('/domains/:domain/audit/:id', async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    const event = await s.audit.get(tenant.domain, String(req.params.id));
    if (!event) throw new AppError('not_found', { message: 'No such audit event.' });
    res.json(event);
  });

  router.get('/domains/:domain/activity', async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    const q = parseBody(activityQuerySchema, req.query);
    res.json(await s.loginActivity.summary(tenant.domain, q.days));
  });

  return router;
}
