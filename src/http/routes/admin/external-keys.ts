import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { ExternalKeys, type ResumedImport } from '../../../admin/external-keys.js';
import type { Tenant } from '../../../domain/tenant.js';
import { AppError } from '../../../errors/index.js';
import type { Services } from '../../../services.js';
import { parseBody } from '../../validate.js';
import { auditAdmin, permissionsOf, principalOf, scopedTenant } from './context.js';
import { assertCsvUpload } from './csv-upload.js';
import { registerAdminOperations } from './openapi.js';

const bulkSchema = z.strictObject({
  users: z
    .array(z.strictObject({ id: z.string().min(1).max(300), externalKey: z.string().max(1000).nullable() }))
    .min(1)
    .max(50),
});

const listQuerySchema = z.object({
  count: z.coerce.number().int().min(1).max(100).default(100),
  cursor: z.string().max(400).optional(),
  hasExternalKey: z.enum(['true', 'false']).optional(),
});

registerAdminOperations([
  {
    method: 'get',
    path: '/domains/{domain}/external-keys',
    summary: 'List members with their external keys (S-27): `count` 1–100 (default 100), `cursor`, `hasExternalKey` true|false',
    success: 200,
    errors: ['conflict'],
  },
  {
    method: 'post',
    path: '/domains/{domain}/external-keys',
    summary: 'Set or remove (null) the external keys of 1–50 members, all-or-nothing (S-27); id is a member id, an account or externalKey:VALUE',
    body: bulkSchema,
    success: 200,
    errors: ['unknown_member', 'external_key_conflict', 'external_key_required', 'conflict'],
  },
  {
    method: 'get',
    path: '/domains/{domain}/external-keys.csv',
    summary: 'Download account,name,externalKey as CSV (S-28): UTF-8 with a BOM, formula cells prefixed with an apostrophe',
    success: 200,
    errors: ['conflict'],
  },
  {
    method: 'put',
    path: '/domains/{domain}/external-keys.csv',
    summary: 'Upload the edited CSV (text/csv): validated whole, then applied all-or-nothing (S-28); an empty externalKey removes it',
    body: 'csv',
    success: 200,
    errors: ['csv_invalid', 'unsupported_media_type', 'payload_too_large', 'conflict'],
  },
]);

/** The UTF-8 byte order mark: Excel needs it to read a CSV as UTF-8 (and the upload accepts it). */
const BOM = '\uFEFF';

/** Writes to the response, resolving when it wants more (backpressure); rejects if the client left. */
export function responseWriter(res: Response): (chunk: string) => Promise<void> {
  return (chunk) =>
    new Promise<void>((resolve, reject) => {
      const gone = (): AppError => new AppError('bad_request', { detail: 'client closed the download' });
      if (res.destroyed || res.writableEnded) {
        reject(gone());
        return;
      }
      if (res.write(chunk)) {
        resolve();
        return;
      }
      const onDrain = (): void => {
        res.off('close', onClose);
        resolve();
      };
      const onClose = (): void => {
        res.off('drain', onDrain);
        reject(gone());
      };
      res.once('drain', onDrain);
      res.once('close', onClose);
    });
}

/**
 * External keys in bulk (S-27) and as CSV (S-28):
 * - `POST …/external-keys` `{"users":[{"id","externalKey"|null}]}` (1–50, all-or-nothing) → `{"users":[{id,account,externalKey}]}`;
 * - `GET …/external-keys?count&cursor&hasExternalKey` → `{"users":[{id,account,name,externalKey}],"nextCursor"}`;
 * - `GET …/external-keys.csv`: `account,name,externalKey`, UTF-8 with a BOM (so Excel reads it as
 *   UTF-8), CRLF rows, RFC 4180 quoting; a cell that a spreadsheet would run as a formula (starting with
 *   `= + - @`, tab or CR, after any `'`s) gets one more leading `'`, which the upload takes off again;
 * - `PUT …/external-keys.csv` (`text/csv`): the edited file, BOM or not; validated whole, then applied
 *   all-or-nothing → `{"updated","removed","unchanged"}`, or 400 `csv_invalid` with `{row,column,error}`s.
 * Any of them first finishes an import an earlier request left unfinished.
 */
export function externalKeyRoutes(s: Services): Router {
  const router = Router();
  const externalKeys = new ExternalKeys({ store: s.store, members: s.members, clock: s.clock });
  const base = '/domains/:domain/external-keys';

  const auditResumed = async (req: Request, res: Response, tenant: Tenant, resumed: ResumedImport | null): Promise<void> => {
    if (!resumed) return;
    await auditAdmin(s, req, res, { type: 'external_keys.imported', domain: tenant.domain, data: { jobId: resumed.jobId, resumed: true, startedAt: resumed.startedAt, ...resumed.counts } });
  };

  router.post(base, async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    const body = parseBody(bulkSchema, req.body);
    const result = await externalKeys.update(tenant, body.users, { allowSuperAdmin: permissionsOf(principalOf(res)).super });
    await auditResumed(req, res, tenant, result.resumed);
    await auditAdmin(s, req, res, { type: 'external_keys.updated', domain: tenant.domain, data: { count: body.users.length, changed: result.changed } });
    res.json({ users: result.users });
  });

  router.get(base, async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    const query = parseBody(listQuerySchema, req.query);
    const page = await externalKeys.list(tenant, {
      count: query.count,
      cursor: query.cursor,
      hasExternalKey: query.hasExternalKey === undefined ? undefined : query.hasExternalKey === 'true',
    });
    await auditResumed(req, res, tenant, page.resumed);
    res.json({ users: page.users, nextCursor: page.nextCursor });
  });

  router.get(`${base}.csv`, async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    await auditResumed(req, res, tenant, await externalKeys.finishPendingImport(tenant.domain));
    res.status(200);
    res.setHeader('Content-Type', 'text/csv; charset=utf-8');
    res.setHeader('Content-Disposition', `attachment; filename="external-keys-${tenant.domain}.csv"`);
    const write = responseWriter(res);
    await write(BOM);
    const rows = await externalKeys.exportCsv(tenant, write);
    res.end();
    await auditAdmin(s, req, res, { type: 'external_keys.exported', domain: tenant.domain, data: { rows } });
  });

  router.put(`${base}.csv`, async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    assertCsvUpload(req);
    let result;
    try {
      result = await externalKeys.importCsv(tenant, req, { allowSuperAdmin: permissionsOf(principalOf(res)).super });
    } catch (err) {
      // Refused before the body was read to its end: do not wait for the rest of it.
      if (err instanceof AppError && err.code === 'payload_too_large') res.setHeader('Connection', 'close');
      throw err;
    }
    await auditResumed(req, res, tenant, result.resumed);
    const { updated, removed, unchanged } = result;
    await auditAdmin(s, req, res, { type: 'external_keys.imported', domain: tenant.domain, data: { jobId: result.jobId, updated, removed, unchanged } });
    res.json({ updated, removed, unchanged });
  });

  return router;
}
