import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { configChanges, domainConfigSchema, domainConfigSettings, exportDomainConfig, targetMdm, type ConfigChange } from '../../../admin/domain-config.js';
import type { TenantFields } from '../../../admin/sso-switch.js';
import { tenantSchema, type Tenant } from '../../../domain/tenant.js';
import { AppError } from '../../../errors/index.js';
import type { Services } from '../../../services.js';
import { parseBody } from '../../validate.js';
import { auditAdmin, requirePermission, scopedTenant } from './context.js';
import { registerAdminOperations } from './openapi.js';
import { auditMdmConfigured, mdmBodies } from './mdm.js';
import { resolveSettings, ssoBodies } from './sso.js';

/** PUT …/mdm's schema without `customKey`: a key value is a secret and never part of the document. */
const mdmSettingsBody = mdmBodies.put.pick({ mode: true, restrictOtherDomains: true });
export const domainConfigBody = domainConfigSchema(ssoBodies.put, mdmSettingsBody);
const importQuery = z.strictObject({ dryRun: z.enum(['true', 'false']).optional() });

registerAdminOperations([
  {
    method: 'get',
    path: '/domains/{domain}/config.json',
    summary:
      "The domain's configuration as one document `{version: 1, domain, exportedAt, settings: {name, sso, serviceOrigins, logoutRedirectDomains, defaultServiceUrl, thirdPartyAppPasswordsAllowed, superAdminBreakGlass, mdm: {mode, restrictOtherDomains}}}` (sso as GET …/sso shows it: no secret, oauth.clientSecretSet; no MDM key, id or count), as a download",
    success: 200,
  },
  {
    method: 'post',
    path: '/domains/{domain}/config',
    summary:
      'Import a configuration document (from config.json; sso validated as PUT …/sso, oauth.clientSecret may be given; mdm as PUT …/mdm without customKey, with its plan gate). `?dryRun=true`: `{dryRun, changes: [{path, from, to}], warnings, mdm?: the MDM preview}`, nothing changes. Otherwise (super) applies the MDM options through the MDM service (switching 3rd-party sync on issues a key on this deployment and ends mobile sessions, as PUT …/mdm; the answer names the key id, never its value), then the other changes in one tenant write under the switch lock, switching SSO with its effects when sso.enabled changes: `{applied, changes, switched, effects, mdm}`; the same document again: `applied: false`, no changes. Audited domain_config.imported (and mdm.enabled / mdm.disabled / mdm.updated)',
    body: domainConfigBody,
    success: 200,
    errors: ['plan_required', 'mdm_key_not_unique', 'conflict', 'sso_switch_in_progress', 'certificate_not_pem', 'idp_metadata_invalid', 'store_unavailable'],
  },
]);

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
    const mdm = await s.mdmKeys.settings(tenant.domain);
    res.attachment(`${tenant.domain}.config.json`).json(exportDomainConfig(tenant, mdm, s.clock.now()));
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
    const { sso: _sso, mdm: askedMdm, defaultServiceUrl, ...rest } = doc.settings;
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
    // MDM (§8): checked with PUT …/mdm's own rules before anything is written, so a refusal leaves the
    // SSO part unapplied too. Without `settings.mdm` (an older document) MDM stays as it is.
    const currentMdm = await s.mdmKeys.settings(tenant.domain);
    const mdm = targetMdm(currentMdm, askedMdm);
    const mdmChanging = mdm.mode !== currentMdm.mode || mdm.restrictOtherDomains !== currentMdm.restrictOtherDomains;
    const mdmPreview = mdmChanging ? await s.mdmKeys.preview(tenant, mdm) : null;
    if (mdmPreview) problems.push(...mdmPreview.problems.map((p) => ({ ...p, path: `settings.mdm.${p.path}` })));
    if (problems.length) throw new AppError('validation_failed', { details: problems, detail: problems.map((p) => p.path).join(',') });
    if (mdmPreview?.refusal) throw new AppError(mdmPreview.refusal, { detail: `config import: mdm ${mdm.mode} on plan ${tenant.plan}` });
    if (mdmPreview?.issuesKey) warnings.push('MDM: 3rd-party sync is switched on with a new key issued on this deployment (keys are never exported); every mobile session not admitted by it ends. Read its value with GET …/mdm/keys/{id}/value and put it in the MDM console.');
    if (mdmPreview && mdmPreview.builtinExceptionsDeleted > 0) warnings.push(`MDM: ${mdmPreview.builtinExceptionsDeleted} built-in MDM exception settings are deleted.`);
    if (mdmPreview && mdmPreview.keysDeactivated > 0) warnings.push('MDM: checks stop; the keys are kept inactive and never become active again.');

    const changes: ConfigChange[] = configChanges(domainConfigSettings(tenant, currentMdm), domainConfigSettings(target, mdm));
    const tenantChanging = changes.some((c) => !c.path.startsWith('mdm.'));
    const newSecret = doc.settings.sso.oauth?.clientSecret;
    const secretChanging = newSecret !== undefined && newSecret !== tenant.sso.oauth?.clientSecret;
    if (secretChanging) changes.push({ path: 'sso.oauth.clientSecret', from: '(secret)', to: '(new secret)' });
    const pending = await s.ssoSwitch.pendingJob(tenant.domain);
    if (dryRun) {
      res.json({ dryRun: true, changes, warnings, ...(mdmPreview ? { mdm: mdmPreview } : {}) });
      return;
    }
    if (changes.length === 0 && !pending) {
      res.json({ dryRun: false, applied: false, changes, switched: false, warnings });
      return;
    }
    // MDM first, through the MDM service (plan gate, key issued on switching on, mobile sessions ended,
    // built-in exceptions deleted, keys deactivated — as PUT …/mdm): its refusals (mdm_key_not_unique,
    // a busy lock) come before the tenant write, so they leave nothing applied.
    const mdmResult = mdmChanging ? await s.mdmKeys.configure(tenant, mdm) : null;
    if (mdmResult) await auditMdmConfigured(s, req, res, tenant.domain, mdm, mdmResult);
    const result = tenantChanging || secretChanging || pending ? await s.ssoSwitch.apply(tenant, sso, fields) : null;
    const switched = result?.switched ?? false;
    await auditAdmin(s, req, res, {
      type: 'domain_config.imported',
      domain: tenant.domain,
      data: { changes: changes.length, paths: changes.map((c) => c.path).join(',').slice(0, 1000), from: doc.domain ?? null, switched, ...(result?.switched ? result.effects : {}) },
    });
    res.json({
      dryRun: false,
      applied: true,
      changes,
      switched,
      ...(result ? { effects: result.effects } : {}),
      ...(mdmResult
        ? {
            mdm: {
              // The key's id only: its value is read back with GET …/mdm/keys/{id}/value (audited), never in a bulk answer.
              keyId: mdmResult.key?.id ?? null,
              builtinExceptionsDeleted: mdmResult.builtinExceptionsDeleted,
              keysDeactivated: mdmResult.keysDeactivated,
              keysReplaced: mdmResult.keysReplaced,
              mobileSessionsEnded: mdmResult.mobileSessionsEnded,
            },
          }
        : {}),
      warnings,
    });
  });

  return router;
}
