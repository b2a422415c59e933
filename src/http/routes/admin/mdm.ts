import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import {
  CUSTOM_KEY_MESSAGE,
  CUSTOM_KEY_RE,
  MDM_MAX_ACTIVE_KEYS,
  MDM_MAX_EFFECTIVE_AHEAD_MS,
  MDM_MAX_GRACE_SECONDS,
  MDM_VALUE_TYPE,
  planAllowsExternal,
  type ConfigureInput,
  type ConfigureResult,
  type IssuedKey,
} from '../../../mdm/mdm-keys.js';
import { AppError } from '../../../errors/index.js';
import type { Services } from '../../../services.js';
import { parseBody } from '../../validate.js';
import { auditAdmin, requirePermission, scopedTenant } from './context.js';
import { registerAdminOperations } from './openapi.js';

const customValue = z.string().regex(CUSTOM_KEY_RE, CUSTOM_KEY_MESSAGE);

const putSchema = z.strictObject({
  /** M-1: `external` = 3rd-party MDM sync (plan standard or advanced); `builtin` = the suite's own MDM. */
  mode: z.enum(['none', 'builtin', 'external']),
  /** M-7: only with `external`, and only while every active key is unique across all tenants. */
  restrictOtherDomains: z.boolean().optional(),
  /** M-2: a custom key value instead of an automatic one (only with `external`; replaces the keys when already on). */
  customKey: customValue.optional(),
});

const addKeySchema = z.strictObject({
  /** A custom value; an automatic one (256 random bits, base64url) when left out. */
  value: customValue.optional(),
  /** M-14: ISO 8601 date-time with offset; the key is listed at once but admits no one before it. */
  effectiveFrom: z.iso.datetime({ offset: true }).optional(),
});

const reissueSchema = z.strictObject({
  /** M-6: the replaced keys keep admitting this long (PingID-style overlap); 0 or absent = they stop at once. */
  graceSeconds: z.number().int().min(0).max(MDM_MAX_GRACE_SECONDS).optional(),
  /** A custom value for the new key; an automatic one when left out. */
  value: customValue.optional(),
});

/** M-12: `?replacement=` of a revocation: `new`, or the id of a remaining active key. */
const replacementQuery = z.union([z.literal('new'), z.string().regex(/^mk_[A-Za-z0-9_-]{16}$/, 'must be "new" or a key id')]).optional();

const exceptionSchema = z.strictObject({
  account: z.string().min(3).max(254).regex(/^[^\s@]+@[^\s@]+$/, 'must be an account such as user@example.com'),
  note: z.string().max(500).optional(),
});

registerAdminOperations([
  {
    method: 'get',
    path: '/domains/{domain}/mdm',
    summary:
      'MDM settings: mode, restrictOtherDomains, the managed-app-config key name and type, active key count, plan and whether 3rd-party sync is available on it (`available`, `unavailableReason`), built-in exception count, and the rules for custom values and keys',
    success: 200,
  },
  {
    method: 'post',
    path: '/domains/{domain}/mdm/preview',
    summary:
      'What PUT …/mdm would do with this body, changing nothing: refusal (plan_required), input problems, and the counts of mobile sessions that would end, built-in MDM exceptions that would be deleted, keys replaced or deactivated',
    body: putSchema,
    success: 200,
  },
  {
    method: 'put',
    path: '/domains/{domain}/mdm',
    summary:
      'Set the MDM mode (M-1; super): `external` needs plan standard/advanced, deletes built-in MDM exceptions (count returned), issues a key (auto or `customKey`, M-2) and names it for the MDM console (M-3); `none` stops checks and keeps keys inactive (M-9); `restrictOtherDomains` needs unique keys (M-7)',
    body: putSchema,
    success: 200,
    errors: ['plan_required', 'mdm_key_not_unique', 'conflict'],
  },
  { method: 'get', path: '/domains/{domain}/mdm/keys', summary: 'List MDM keys, masked, with status, effectiveFrom, lastPresentedAt and liveSessions (M-13)', success: 200 },
  {
    method: 'post',
    path: '/domains/{domain}/mdm/keys',
    summary: 'Add a key, auto or custom, optionally effective later (M-12, M-14); at most 5 active keys (M-11); super',
    body: addKeySchema,
    success: 201,
    errors: ['mdm_external_required', 'mdm_key_limit', 'mdm_key_not_unique', 'conflict'],
  },
  {
    method: 'post',
    path: '/domains/{domain}/mdm/keys:reissue',
    summary: 'Reissue (M-6, super): a new key replaces every active key; `graceSeconds` keeps the replaced keys valid that long',
    body: reissueSchema,
    success: 201,
    errors: ['mdm_external_required', 'mdm_key_limit', 'mdm_key_not_unique', 'conflict'],
  },
  {
    method: 'delete',
    path: '/domains/{domain}/mdm/keys/{id}',
    summary:
      'Revoke a key and end the mobile sessions it admitted (M-12, super). When no other key would admit devices now, `?replacement=new` (a new automatic key) or `?replacement=<key id>` (a remaining scheduled key, brought forward to now) is required',
    success: 200,
    errors: ['mdm_external_required', 'mdm_key_not_found', 'mdm_last_key', 'conflict', 'forbidden'],
  },
  { method: 'get', path: '/domains/{domain}/mdm/keys/{id}/value', summary: 'Read a key value back, to paste into the MDM console (M-2; audited as mdm_key.revealed; super)', success: 200, errors: ['mdm_key_not_found', 'conflict', 'forbidden'] },
  { method: 'get', path: '/domains/{domain}/mdm/builtin-exceptions', summary: 'Built-in MDM exception settings', success: 200 },
  {
    method: 'post',
    path: '/domains/{domain}/mdm/builtin-exceptions',
    summary: 'Add a built-in MDM exception setting (super; refused while 3rd-party MDM sync is on, M-1)',
    body: exceptionSchema,
    success: 201,
    errors: ['mdm_builtin_excluded', 'conflict', 'forbidden'],
  },
  {
    method: 'delete',
    path: '/domains/{domain}/mdm/builtin-exceptions/{id}',
    summary: 'Delete a built-in MDM exception setting (super)',
    success: 204,
    errors: ['mdm_builtin_exception_not_found', 'forbidden'],
  },
]);


const keyIdParam = (req: Request): string => String(req.params.id).slice(0, 100);

/** The limits a console checks inline before asking (the server checks them again). */
const rules = {
  customValue: { minLength: 16, maxLength: 256, pattern: CUSTOM_KEY_RE.source, message: CUSTOM_KEY_MESSAGE },
  maxActiveKeys: MDM_MAX_ACTIVE_KEYS,
  maxGraceSeconds: MDM_MAX_GRACE_SECONDS,
  maxEffectiveAheadDays: MDM_MAX_EFFECTIVE_AHEAD_MS / 86_400_000,
} as const;

/**
 * 3rd-party MDM sync settings and MDM keys (docs/spec.md §8, §9, §11). Key values appear only in the answer that
 * issues them and in the audited read-back; lists show masks. Audit events never carry a value.
 */
export function mdmAdminRoutes(s: Services): Router {
  const router = Router();
  /** What the admin pastes into the MDM console (M-3): the key name is the deployment's (config mdm.managedAppConfigKey). */
  const managedAppConfig = { configKey: s.config.mdm.managedAppConfigKey, valueType: MDM_VALUE_TYPE } as const;
  const base = '/domains/:domain/mdm';

  router.get(base, async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    const [settings, keys, exceptions] = await Promise.all([s.mdmKeys.settings(tenant.domain), s.mdmKeys.list(tenant.domain), s.mdmKeys.listBuiltinExceptions(tenant.domain)]);
    const available = planAllowsExternal(tenant.plan);
    res.json({
      mode: settings.mode,
      restrictOtherDomains: settings.restrictOtherDomains,
      ...managedAppConfig,
      activeKeys: keys.filter((k) => k.status === 'active').length,
      updatedAt: settings.updatedAt === null ? null : new Date(settings.updatedAt).toISOString(),
      plan: tenant.plan,
      available,
      unavailableReason: available ? null : 'plan_required',
      builtinExceptions: exceptions.length,
      rules,
    });
  });

  // The precautions before switching: what the PUT would do, with counts (read permission, like …/sso/preview).
  router.post(`${base}/preview`, async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    const body = parseBody(putSchema, req.body);
    const preview = await s.mdmKeys.preview(tenant, body);
    const warnings: string[] = [];
    if (preview.issuesKey) warnings.push('Every mobile session of this organisation not admitted by the new key ends at once; the app then signs in only where the MDM delivers the key value.');
    if (preview.builtinExceptionsDeleted > 0) warnings.push('Built-in MDM exception settings are deleted: built-in MDM and 3rd-party MDM sync never hold at once.');
    if (preview.keysDeactivated > 0) warnings.push('Checks stop at once; mobile sessions stay; the keys are kept inactive and never become active again.');
    res.json({ ...preview, ...managedAppConfig, warnings });
  });

  router.put(base, async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    requirePermission(res, 'super');
    const body = parseBody(putSchema, req.body);
    const result = await s.mdmKeys.configure(tenant, body);
    const { settings, previousMode } = result;
    const switchedOn = settings.mode === 'external' && previousMode !== 'external';
    const switchedOff = settings.mode !== 'external' && previousMode === 'external';
    await auditMdmConfigured(s, req, res, tenant.domain, body, result);
    const warnings: string[] = [];
    if (switchedOn || result.key) {
      warnings.push('Mobile sessions not admitted by the new key have ended; the app signs in only where the MDM delivers this key value.');
    }
    if (switchedOff) warnings.push('Checks stopped. Values already pushed by the MDM stay on devices; the keys are kept inactive.');
    res.json({
      ...managedAppConfig,
      ...(result.key ? { key: result.key } : {}),
      mode: settings.mode,
      restrictOtherDomains: settings.restrictOtherDomains,
      builtinExceptionsDeleted: result.builtinExceptionsDeleted,
      keysDeactivated: result.keysDeactivated,
      keysReplaced: result.keysReplaced,
      mobileSessionsEnded: result.mobileSessionsEnded,
      warnings,
    });
  });

  router.get(`${base}/keys`, async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    res.json({ ...managedAppConfig, keys: await s.mdmKeys.list(tenant.domain) });
  });

  router.post(`${base}/keys`, async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    requirePermission(res, 'super');
    const body = parseBody(addKeySchema, req.body);
    const created = await s.mdmKeys.add(tenant, { value: body.value, effectiveFrom: body.effectiveFrom === undefined ? undefined : Date.parse(body.effectiveFrom) });
    await auditAdmin(s, req, res, {
      type: 'mdm_key.added',
      domain: tenant.domain,
      data: { keyId: created.id, source: body.value === undefined ? 'auto' : 'custom', effectiveFrom: new Date(created.effectiveFrom).toISOString() },
    });
    res.status(201).json({ id: created.id, value: created.value, effectiveFrom: new Date(created.effectiveFrom).toISOString(), ...managedAppConfig });
  });

  // The path has a literal colon (`keys:reissue`), escaped for Express.
  router.post(`${base}/keys\\:reissue`, async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    requirePermission(res, 'super');
    const body = parseBody(reissueSchema, req.body);
    const result = await s.mdmKeys.reissue(tenant, body);
    const graceUntil = result.graceUntil === null ? null : new Date(result.graceUntil).toISOString();
    await auditAdmin(s, req, res, {
      type: 'mdm_key.reissued',
      domain: tenant.domain,
      data: { keyId: result.id, source: body.value === undefined ? 'auto' : 'custom', replaced: result.replaced.length, graceUntil, mobileSessionsEnded: result.mobileSessionsEnded },
    });
    const issued: IssuedKey = { id: result.id, value: result.value };
    res.status(201).json({ ...issued, ...managedAppConfig, replaced: result.replaced, graceUntil, mobileSessionsEnded: result.mobileSessionsEnded });
  });

  router.delete(`${base}/keys/:id`, async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    requirePermission(res, 'super');
    const parsed = replacementQuery.safeParse(typeof req.query.replacement === 'string' ? req.query.replacement : undefined);
    if (!parsed.success || (req.query.replacement !== undefined && typeof req.query.replacement !== 'string')) {
      throw new AppError('validation_failed', { details: [{ path: 'replacement', message: 'must be "new" or a key id' }], detail: 'replacement' });
    }
    const result = await s.mdmKeys.revoke(tenant, keyIdParam(req), parsed.data);
    const replacementKeyId = result.replacement?.id ?? result.takenOverBy?.id ?? null;
    await auditAdmin(s, req, res, {
      type: 'mdm_key.revoked',
      domain: tenant.domain,
      data: { keyId: result.revoked, mobileSessionsEnded: result.mobileSessionsEnded, replacementKeyId, replacement: result.replacement ? 'new' : result.takenOverBy ? 'existing' : null },
    });
    const body: Record<string, unknown> = { revoked: result.revoked, mobileSessionsEnded: result.mobileSessionsEnded };
    if (result.replacement) {
      body.replacement = { ...result.replacement, ...managedAppConfig };
      body.warning = 'A new key replaces the revoked one: devices are blocked until the MDM delivers the new value.';
    } else if (result.takenOverBy) {
      body.takenOverBy = { id: result.takenOverBy.id, effectiveFrom: new Date(result.takenOverBy.effectiveFrom).toISOString() };
    }
    res.json(body);
  });

  router.get(`${base}/keys/:id/value`, async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    // A key value is a secret that admits devices: revealing it again is a super admin's (or a full key's) act.
    requirePermission(res, 'super');
    const revealed = await s.mdmKeys.reveal(tenant.domain, keyIdParam(req));
    await auditAdmin(s, req, res, { type: 'mdm_key.revealed', domain: tenant.domain, data: { keyId: revealed.id } });
    res.json({ id: revealed.id, value: revealed.value, status: revealed.status, ...managedAppConfig });
  });

  router.get(`${base}/builtin-exceptions`, async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    res.json({ exceptions: await s.mdmKeys.listBuiltinExceptions(tenant.domain) });
  });

  router.post(`${base}/builtin-exceptions`, async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    requirePermission(res, 'super');
    const body = parseBody(exceptionSchema, req.body);
    const created = await s.mdmKeys.addBuiltinException(tenant.domain, body);
    await auditAdmin(s, req, res, { type: 'mdm_builtin_exception.created', domain: tenant.domain, data: { id: created.id } });
    res.status(201).json(created);
  });

  router.delete(`${base}/builtin-exceptions/:id`, async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    requirePermission(res, 'super');
    const deleted = await s.mdmKeys.deleteBuiltinException(tenant.domain, keyIdParam(req));
    await auditAdmin(s, req, res, { type: 'mdm_builtin_exception.deleted', domain: tenant.domain, data: { id: deleted.id } });
    res.status(204).end();
  });

  return router;
}

/** The audit events of PUT …/mdm (also written when a configuration import changes the MDM settings). */
export async function auditMdmConfigured(s: Services, req: Request, res: Response, domain: string, body: ConfigureInput, result: ConfigureResult): Promise<void> {
  const { settings, previousMode } = result;
  const switchedOn = settings.mode === 'external' && previousMode !== 'external';
  const switchedOff = settings.mode !== 'external' && previousMode === 'external';
  await auditAdmin(s, req, res, {
    type: switchedOn ? 'mdm.enabled' : switchedOff ? 'mdm.disabled' : 'mdm.updated',
    domain,
    data: {
      mode: settings.mode,
      previousMode,
      restrictOtherDomains: settings.restrictOtherDomains,
      builtinExceptionsDeleted: result.builtinExceptionsDeleted,
      keysDeactivated: result.keysDeactivated,
      keysReplaced: result.keysReplaced.length,
      mobileSessionsEnded: result.mobileSessionsEnded,
      keyId: result.key?.id ?? null,
      keySource: result.key ? (body.customKey === undefined ? 'auto' : 'custom') : null,
    },
  });
  if (result.builtinExceptionsDeleted > 0) {
    await auditAdmin(s, req, res, { type: 'mdm_builtin_exceptions.deleted', domain, data: { count: result.builtinExceptionsDeleted } });
  }
}

export const mdmBodies = { put: putSchema, addKey: addKeySchema, reissue: reissueSchema, builtinException: exceptionSchema };
