import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { createDomainWithSuperAdmin, listDomainSummaries } from '../../../admin/domain-overview.js';
import { memberView, refuseWhileSso, requireSso } from '../../../admin/member-directory.js';
import { accountSchema } from '../../../domain/member.js';
import { domainSchema, originSchema, tenantSchema, type Tenant } from '../../../domain/tenant.js';
import { assertUnsolicitedLanding } from '../../../domain/unsolicited-landing.js';
import { AppError } from '../../../errors/index.js';
import type { Services } from '../../../services.js';
import { parseBody } from '../../validate.js';
import { API_KEY_MAX_LIFETIME_MS } from '../../../admin/api-keys.js';
import { auditAdmin, principalOf, requireOperator, requirePermission, scopedTenant } from './context.js';

/** A tenant as the admin API shows it: SSO secrets never leave. */
export function tenantView(t: Tenant): Record<string, unknown> {
  const { sso, ...rest } = t;
  const { oauth, saml, ...ssoRest } = sso;
  return {
    ...rest,
    sso: {
      ...ssoRest,
      ...(saml ? { saml: { ...saml, idpMetadataXml: saml.idpMetadataXml ? '(stored)' : undefined } } : {}),
      ...(oauth ? { oauth: { ...oauth, clientSecret: undefined, hasClientSecret: true } } : {}),
    },
  };
}

const createSchema = z.strictObject({
  domain: domainSchema,
  name: z.string().min(1).max(200),
  plan: z.enum(['free', 'standard', 'advanced']).default('free'),
  group: z.string().min(1).max(100).optional(),
  /**
   * The tenant's first super admin, created with it: with `password` (checked against the new tenant's
   * policy) the member is in use at once; without, pending with an invitation link (shown once).
   */
  superAdmin: z
    .strictObject({
      account: accountSchema,
      name: z.string().min(1).max(200),
      password: z.string().max(1024).optional(),
    })
    .optional(),
});

const listQuerySchema = z.object({
  /** The `nextCursor` of the previous page. */
  cursor: domainSchema.optional(),
  count: z.coerce.number().int().min(1).max(200).default(100),
});

const patchSchema = z.strictObject({
  name: z.string().min(1).max(200).optional(),
  plan: z.enum(['free', 'standard', 'advanced']).optional(),
  group: z.string().min(1).max(100).nullable().optional(),
  defaultServiceUrl: z.string().url().nullable().optional(),
  thirdPartyAppPasswordsAllowed: z.boolean().optional(),
  superAdminBreakGlass: z.boolean().optional(),
});

const hostPattern = tenantSchema.shape.logoutRedirectDomains;
const originsSchema = z.strictObject({
  serviceOrigins: z.array(originSchema).max(100).optional(),
  logoutRedirectDomains: hostPattern.optional(),
});

const policySchema = tenantSchema.shape.passwordPolicy.unwrap();
const retentionSchema = z.strictObject({ loginRetentionDays: z.number().int().min(1).max(90) });
const apiKeySchema = z.strictObject({
  name: z.string().min(1).max(100),
  /** `read`: GET only; `full` (default): everything a super admin of the tenant may do. */
  scope: z.enum(['read', 'full']).default('full'),
  /** When the key stops working: an ISO 8601 date-time in the future, at most 366 days ahead. Absent: never. */
  expiresAt: z.iso.datetime({ offset: true }).optional(),
});

export function domainRoutes(s: Services): Router {
  const router = Router();

  router.post('/domains', async (req: Request, res: Response) => {
    requireOperator(res);
    const body = parseBody(createSchema, req.body);
    if (body.superAdmin) {
      const { superAdmin, ...fields } = body;
      const created = await createDomainWithSuperAdmin(s, { ...fields, superAdmin });
      res.locals.domain = created.tenant.domain;
      await auditAdmin(s, req, res, { type: 'domain.created', domain: created.tenant.domain, data: { plan: created.tenant.plan, superAdmin: created.superAdmin.id } });
      await auditAdmin(s, req, res, {
        type: 'member.created',
        domain: created.tenant.domain,
        data: { memberId: created.superAdmin.id, status: created.superAdmin.status, role: 'super_admin', withPassword: superAdmin.password !== undefined },
      });
      if (created.invitation) {
        await auditAdmin(s, req, res, { type: 'invitation.created', domain: created.tenant.domain, data: { memberId: created.superAdmin.id, invitationId: created.invitation.id } });
      }
      res.status(201).json({
        ...tenantView(created.tenant),
        superAdmin: memberView(created.superAdmin),
        invitation: created.invitation ? { id: created.invitation.id, url: `${s.config.publicUrl}/d/invite/${created.invitation.token}`, expiresAt: new Date(created.invitation.expiresAt).toISOString() } : null,
      });
      return;
    }
    if (await s.tenants.find(body.domain)) throw new AppError('conflict', { message: 'This domain is already registered.' });
    const tenant = await s.tenants.save({ ...body, sso: { enabled: false, type: 'saml', userKey: 'externalKey', setExpireTime: false } });
    res.locals.domain = tenant.domain;
    await auditAdmin(s, req, res, { type: 'domain.created', domain: tenant.domain, data: { plan: tenant.plan } });
    res.status(201).json(tenantView(tenant));
  });

  // The operator pages through every tenant; any other caller sees its own one.
  router.get('/domains', async (req: Request, res: Response) => {
    const p = principalOf(res);
    const query = parseBody(listQuerySchema, req.query);
    if (p.kind === 'operator') {
      res.json(await listDomainSummaries(s.store, s.tenants, query));
      return;
    }
    const own = await listDomainSummaries(s.store, s.tenants, { cursor: undefined, count: 1, only: p.domain });
    res.json(own);
  });

  router.get('/domains/:domain', async (req: Request, res: Response) => {
    res.json(tenantView(await scopedTenant(s, req, res)));
  });

  router.patch('/domains/:domain', async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    const body = parseBody(patchSchema, req.body);
    // S-24: switching third-party app passwords on/off is a setting of SSO tenants.
    if (body.thirdPartyAppPasswordsAllowed !== undefined && body.thirdPartyAppPasswordsAllowed !== tenant.thirdPartyAppPasswordsAllowed) {
      requireSso(tenant, 'Switching third-party app passwords on or off');
    }
    if (body.plan !== undefined && principalOf(res).kind !== 'operator') throw new AppError('forbidden', { message: 'Only the operator changes plans.' });
    // Break-glass is the super admin's own way in while the IdP is down: only a super admin changes it.
    if (body.superAdminBreakGlass !== undefined && body.superAdminBreakGlass !== tenant.superAdminBreakGlass) requirePermission(res, 'super');
    const defaultServiceUrl = body.defaultServiceUrl === null ? undefined : (body.defaultServiceUrl ?? tenant.defaultServiceUrl);
    // S-9: a tenant that allows unsolicited logins keeps somewhere for them to land.
    assertUnsolicitedLanding(tenant.sso, defaultServiceUrl ?? s.config.defaultServiceUrl, 'defaultServiceUrl');
    const saved = await s.tenants.save({
      ...tenant,
      ...body,
      group: body.group === null ? undefined : (body.group ?? tenant.group),
      defaultServiceUrl,
    });
    await auditAdmin(s, req, res, { type: 'domain.updated', domain: tenant.domain, data: { fields: Object.keys(body).join(',') } });
    res.json(tenantView(saved));
  });

  router.put('/domains/:domain/origins', async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    const body = parseBody(originsSchema, req.body);
    if (body.logoutRedirectDomains !== undefined && JSON.stringify(body.logoutRedirectDomains) !== JSON.stringify(tenant.logoutRedirectDomains)) {
      requireSso(tenant, 'Setting logout redirection domains');
    }
    const insecure = (body.serviceOrigins ?? []).filter((o) => !o.startsWith('https://'));
    if (insecure.length && s.config.env === 'production') throw new AppError('validation_failed', { details: insecure.map((o) => ({ path: 'serviceOrigins', message: `${o} is not https` })) });
    const saved = await s.tenants.save({ ...tenant, serviceOrigins: body.serviceOrigins ?? tenant.serviceOrigins, logoutRedirectDomains: body.logoutRedirectDomains ?? tenant.logoutRedirectDomains });
    await auditAdmin(s, req, res, { type: 'origins.updated', domain: tenant.domain, data: { serviceOrigins: saved.serviceOrigins.length, logoutRedirectDomains: saved.logoutRedirectDomains.length } });
    res.json({ serviceOrigins: saved.serviceOrigins, logoutRedirectDomains: saved.logoutRedirectDomains });
  });

  router.put('/domains/:domain/password-policy', async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    refuseWhileSso(tenant, 'Editing the password policy');
    const policy = parseBody(policySchema, req.body);
    await s.tenants.save({ ...tenant, passwordPolicy: policy });
    await auditAdmin(s, req, res, { type: 'password_policy.updated', domain: tenant.domain, data: { minLength: policy.minLength } });
    res.json(policy);
  });

  router.put('/domains/:domain/login-retention', async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    refuseWhileSso(tenant, 'Editing login retention');
    const body = parseBody(retentionSchema, req.body);
    await s.tenants.save({ ...tenant, loginRetentionDays: body.loginRetentionDays });
    await auditAdmin(s, req, res, { type: 'login_retention.updated', domain: tenant.domain, data: { days: body.loginRetentionDays } });
    res.json(body);
  });

  router.get('/domains/:domain/api-keys', async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    res.json({ apiKeys: await s.adminKeys.list(tenant.domain) });
  });

  // Shown once; only its hash is stored.
  router.post('/domains/:domain/api-keys', async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    requirePermission(res, 'super');
    const body = parseBody(apiKeySchema, req.body);
    let expiresAt: number | undefined;
    if (body.expiresAt !== undefined) {
      expiresAt = Date.parse(body.expiresAt);
      const now = s.clock.now();
      const problem = expiresAt <= now ? 'must be in the future' : expiresAt > now + API_KEY_MAX_LIFETIME_MS ? 'must be at most 366 days ahead' : null;
      if (problem) throw new AppError('validation_failed', { details: [{ path: 'expiresAt', message: problem }], detail: `expiresAt ${problem}` });
    }
    const created = await s.adminKeys.create(tenant.domain, body.name, { scope: body.scope, expiresAt });
    await auditAdmin(s, req, res, { type: 'api_key.created', domain: tenant.domain, data: { keyId: created.id, scope: created.scope, expiresAt: created.expiresAt } });
    res.status(201).json(created);
  });

  router.delete('/domains/:domain/api-keys/:keyId', async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    requirePermission(res, 'super');
    if (!(await s.adminKeys.revoke(tenant.domain, String(req.params.keyId)))) throw new AppError('not_found', { message: 'No such API key.' });
    await auditAdmin(s, req, res, { type: 'api_key.revoked', domain: tenant.domain, data: { keyId: String(req.params.keyId) } });
    res.status(204).end();
  });

  return router;
}

export const domainBodies = {
  create: createSchema,
  list: listQuerySchema,
  patch: patchSchema,
  origins: originsSchema,
  passwordPolicy: policySchema,
  loginRetention: retentionSchema,
  apiKey: apiKeySchema,
};
