import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { memberView } from '../../../admin/member-directory.js';
import { MembersCsvImport, type OnRolledBack } from '../../../admin/members-csv.js';
import { accountSchema, externalKeySchema, memberRoleSchema, memberStatusSchema } from '../../../domain/member.js';
import { AppError } from '../../../errors/index.js';
import type { Services } from '../../../services.js';
import { parseBody } from '../../validate.js';
import type { Member } from '../../../domain/member.js';
import { auditAdmin, permissionsOf, principalOf, requirePermission, scopedTenant } from './context.js';
import { assertCsvUpload } from './csv-upload.js';

const createSchema = z.strictObject({
  account: accountSchema,
  name: z.string().min(1).max(200),
  externalKey: externalKeySchema.optional(),
  role: memberRoleSchema.default('member'),
  status: memberStatusSchema.default('pending'),
  password: z.string().optional(),
});

const patchSchema = z.strictObject({
  name: z.string().min(1).max(200).optional(),
  account: accountSchema.optional(),
  role: memberRoleSchema.optional(),
  status: memberStatusSchema.optional(),
  // S-26: set, change, or remove (null) the member's external key.
  externalKey: externalKeySchema.nullable().optional(),
});

const listQuerySchema = z.object({
  q: z
    .string()
    .max(200)
    .refine((v) => !/[\u0000-\u001f\u007f]/.test(v), 'must not contain control characters')
    .optional(),
  status: memberStatusSchema.optional(),
  role: memberRoleSchema.optional(),
  hasExternalKey: z.enum(['true', 'false']).optional(),
  count: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z.string().max(1400).optional(),
});

const passwordSchema = z.strictObject({ password: z.string() });
const appPasswordSchema = z.strictObject({ name: z.string().min(1).max(100) });

/**
 * Giving or taking the super admin role needs `super`; so does any change to a super admin (account,
 * external key, status, password, invitation, app passwords, deletion): an admin who could change the
 * super admin's external key or password could sign in as them.
 */
function requireSuperFor(res: Response, target: Member | null, newRole?: Member['role']): void {
  if (target?.role === 'super_admin' || newRole === 'super_admin') requirePermission(res, 'super');
}

export function memberRoutes(s: Services): Router {
  const router = Router();
  const base = '/domains/:domain/members';
  const csvImport = new MembersCsvImport({ store: s.store, members: s.members, clock: s.clock });

  /** Audits an interrupted members CSV import rolled back by this request. */
  const auditRollback =
    (req: Request, res: Response, domain: string): OnRolledBack =>
    ({ jobId, startedAt, count }) =>
      auditAdmin(s, req, res, { type: 'members.import_rolled_back', domain, data: { jobId, startedAt, count } });

  router.get(base, async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    // The list never shows an interrupted import's members for longer than the dead request's lock lives.
    await csvImport.rollBackAbandoned(tenant.domain, auditRollback(req, res, tenant.domain));
    const query = parseBody(listQuerySchema, req.query);
    const page = await s.memberDirectory.search(tenant, {
      ...query,
      hasExternalKey: query.hasExternalKey === undefined ? undefined : query.hasExternalKey === 'true',
    });
    res.json({ members: page.members.map(memberView), nextCursor: page.nextCursor, total: page.total });
  });

  router.post(base, async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    const body = parseBody(createSchema, req.body);
    requireSuperFor(res, null, body.role);
    const member = await s.memberDirectory.create(tenant, body);
    await auditAdmin(s, req, res, { type: 'member.created', domain: tenant.domain, data: { memberId: member.id, status: member.status, role: member.role, withPassword: body.password !== undefined } });
    res.status(201).json(memberView(member));
  });

  // All-or-nothing bulk add (see src/admin/members-csv.ts).
  router.post(`${base}.csv`, async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    assertCsvUpload(req);
    let result;
    try {
      result = await csvImport.importCsv(tenant, req, { allowSuperAdmin: permissionsOf(principalOf(res)).super, onRolledBack: auditRollback(req, res, tenant.domain) });
    } catch (err) {
      // Refused before the body was read to its end: do not wait for the rest of it.
      if (err instanceof AppError && err.code === 'payload_too_large') res.setHeader('Connection', 'close');
      throw err;
    }
    await auditAdmin(s, req, res, { type: 'members.imported', domain: tenant.domain, data: { count: result.created } });
    res.json({ created: result.created });
  });

  router.get(`${base}/:id`, async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    res.json(memberView(await s.memberDirectory.load(tenant, String(req.params.id))));
  });

  router.patch(`${base}/:id`, async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    const member = await s.memberDirectory.load(tenant, String(req.params.id));
    const body = parseBody(patchSchema, req.body);
    requireSuperFor(res, member, body.role);
    const saved = await s.memberDirectory.update(tenant, member, body);
    await auditAdmin(s, req, res, { type: 'member.updated', domain: tenant.domain, data: { memberId: member.id, fields: Object.keys(body).join(',') } });
    res.json(memberView(saved));
  });

  router.delete(`${base}/:id`, async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    const member = await s.memberDirectory.load(tenant, String(req.params.id));
    requireSuperFor(res, member);
    await s.memberDirectory.remove(tenant, member);
    await auditAdmin(s, req, res, { type: 'member.deleted', domain: tenant.domain, data: { memberId: member.id } });
    res.status(204).end();
  });

  // S-23: refused while SSO is on.
  router.put(`${base}/:id/password`, async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    const member = await s.memberDirectory.load(tenant, String(req.params.id));
    requireSuperFor(res, member);
    await s.memberDirectory.setPassword(tenant, member, parseBody(passwordSchema, req.body).password);
    await auditAdmin(s, req, res, { type: 'member.password_set', domain: tenant.domain, data: { memberId: member.id } });
    res.status(204).end();
  });

  // S-23: refused while SSO is on. The link is shown once.
  router.post(`${base}/:id/invitations`, async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    const member = await s.memberDirectory.load(tenant, String(req.params.id));
    requireSuperFor(res, member);
    const { invitation, token } = await s.memberDirectory.invite(tenant, member);
    await auditAdmin(s, req, res, { type: 'invitation.created', domain: tenant.domain, data: { memberId: member.id, invitationId: invitation.id } });
    res.status(201).json({ id: invitation.id, url: `${s.config.publicUrl}/d/invite/${token}`, expiresAt: new Date(invitation.expiresAt).toISOString() });
  });

  // S-23: refused while SSO is on. The password is shown once.
  router.post(`${base}/:id/app-passwords`, async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    const member = await s.memberDirectory.load(tenant, String(req.params.id));
    requireSuperFor(res, member);
    const { appPassword, password } = await s.memberDirectory.createAppPassword(tenant, member, parseBody(appPasswordSchema, req.body).name);
    await auditAdmin(s, req, res, { type: 'app_password.created', domain: tenant.domain, data: { memberId: member.id, appPasswordId: appPassword.id } });
    res.status(201).json({ id: appPassword.id, name: appPassword.name, createdAt: new Date(appPassword.createdAt).toISOString(), password });
  });

  router.delete(`${base}/:id/app-passwords/:appPasswordId`, async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    const member = await s.memberDirectory.load(tenant, String(req.params.id));
    requireSuperFor(res, member);
    if (!(await s.memberDirectory.deleteAppPassword(member, String(req.params.appPasswordId)))) throw new AppError('not_found', { message: 'No such app password.' });
    await auditAdmin(s, req, res, { type: 'app_password.deleted', domain: tenant.domain, data: { memberId: member.id } });
    res.status(204).end();
  });

  return router;
}

export const memberBodies = { list: listQuerySchema, create: createSchema, patch: patchSchema, password: passwordSchema, appPassword: appPasswordSchema };
