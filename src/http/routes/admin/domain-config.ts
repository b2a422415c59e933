import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { configChanges, domainConfigSchema, domainConfigSettings, exportDomainConfig, type ConfigChange } from '../../../admin/domain-config.js';
import type { TenantFields } from '../../../admin/sso-switch.js';
import { tenantSchema, type Tenant } from '../../../domain/tenant.js';
import { AppError } from '../../../errors/index.js';
import type { Services } from '../../../services.js';
import { parseBody } from '../../validate.js';
import { auditAdmin, requirePermission, scopedTenant } from './context.js';
import { resolveSettings, ssoBodies } from './sso.js';

export const domainConfigBody = domainConfigSchema(ssoBodies.put);
const importQuery = z.strictObject({ dryRun: z.enum(['true', 'false']).optional() });

/**
 * A domain's configuration as one document (docs/spec.md §12.1): GET …/config.json exports it (no secret);
 * POST …/config?dryRun=true validates a document with the schemas PUT …/sso and the tenant use and lists
 * the differences (path, from, to) without changing anything; POST …/config applies them in one tenant
 * write under the SSO switch lock — running the switch when `sso.enabled` changes — and is idempotent
 * (the same document again: no changes, nothing written), audited `domain_config.imported`.
 */
export function domainConfigRoutes(s: Services): Router {
  const router = Router();
  const allowHttp = s.config.env !== 'production';

  router.get('/domains/:domain/config.json', async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    res.attachment(`${tenant.domain}.config.json`).json(exportDomainConfig(tenant, s.clock.now()));
  });

  router.post('/domains/:domain/config', async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    const dryRun = parseBody(importQuery, req.query).dryRun === 'true';
    requirePermission(res, dryRun ? 'write' : 'super');
    const doc = parseBody(domainConfigBody, req.body);
    const resolved = resolveSettings(tenant.sso, doc.settings.sso, 'replace', allowHttp, Boolean(s.sp.decryption?.length));
    const { settings: sso, warnings } = resolved;
    // Problem paths name the document's fields.
    const problems = resolved.problems.map((p) => ({ ...p, path: `settings.sso.${p.path}` }));
    const { sso: _sso, defaultServiceUrl, ...rest } = doc.settings;
    const fields: TenantFields = { ...rest, defaultServiceUrl: defaultServiceUrl ?? undefined };
    const target: Tenant = { ...tenant, ...fields, sso };
    if (target.defaultServiceUrl === undefined) delete target.defaultServiceUrl;
    const parsed = tenantSchema.safeParse(target);
    if (!parsed.success) problems.push(...parsed.error.issues.map((i) => ({ path: `settings.${i.path.join('.')}`, message: i.message })));
    // S-24: the logout redirect domains and the app-password switch are SSO settings.
    if (!sso.enabled) {
      if (JSON.stringify(target.logoutRedirectDomains) !== JSON.stringify(tenant.logoutRedirectDomains)) problems.push({ path: 'settings.logoutRedirectDomains', message: 'is an SSO setting: it can change only with sso.enabled true (S-24)' });
      if (target.thirdPartyAppPasswordsAllowed !== tenant.thirdPartyAppPasswordsAllowed) problems.push({ path: 'settings.thirdPartyAppPasswordsAllowed', message: 'is an SSO setting: it can change only with sso.enabled true (S-24)' });
    }
    if (problems.length) throw new AppError('validation_failed', { details: problems, detail: problems.map((p) => p.path).join(',') });

    const changes: ConfigChange[] = configChanges(domainConfigSettings(tenant), domainConfigSettings(target));
    const newSecret = doc.settings.sso.oauth?.clientSecret;
    if (newSecret !== undefined && newSecret !== tenant.sso.oauth?.clientSecret) changes.push({ path: 'sso.oauth.clientSecret', from: '(secret)', to: '(new secret)' });
    const pending = await s.ssoSwitch.pendingJob(tenant.domain);
    if (dryRun) {
      res.json({ dryRun: true, changes, warnings });
      return;
    }
    if (changes.length === 0 && !pending) {
      res.json({ dryRun: false, applied: false, changes, switched: false, warnings });
      return;
    }
    const result = await s.ssoSwitch.apply(tenant, sso, fields);
    await auditAdmin(s, req, res, {
      type: 'domain_config.imported',
      domain: tenant.domain,
      data: { changes: changes.length, paths: changes.map((c) => c.path).join(',').slice(0, 1000), from: doc.domain ?? null, switched: result.switched, ...(result.switched ? result.effects : {}) },
    });
    res.json({ dryRun: false, applied: true, changes, switched: result.switched, effects: result.effects, warnings });
  });

  return router;
}
