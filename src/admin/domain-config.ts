import { z } from 'zod';
import { originSchema, tenantSchema, type Tenant } from '../domain/tenant.js';
import type { MdmMode } from '../mdm/mdm-keys.js';

/**
 * A domain's configuration as one document (issue 18): what moves a tested setup from staging to
 * production. `settings` holds the tenant's SSO settings in the shape GET …/sso gives and PUT …/sso takes
 * (no secret: `oauth.clientSecretSet` instead, no stored metadata document), its allowlists and its
 * restrictions. Not in it: the domain itself, the plan and group (the operator's), members, keys, the
 * password policy and login retention (S-23 keeps them apart from SSO). `mdm` holds the non-secret MDM
 * settings PUT …/mdm takes (mode, restrictOtherDomains); MDM keys are secrets and never leave: the target
 * deployment issues its own (switching 3rd-party sync on issues one, M-2).
 */
export const DOMAIN_CONFIG_VERSION = 1;

export interface DomainConfigSettings {
  name: string;
  sso: Record<string, unknown>;
  serviceOrigins: string[];
  logoutRedirectDomains: string[];
  defaultServiceUrl?: string;
  thirdPartyAppPasswordsAllowed: boolean;
  superAdminBreakGlass: boolean;
  /** Absent only in documents from before MDM was exported: an import then leaves MDM as it is. */
  mdm?: DomainConfigMdm;
}

/** The MDM options an admin sets with PUT …/mdm, without `customKey` (a key value: a secret). */
export interface DomainConfigMdm {
  mode: MdmMode;
  restrictOtherDomains: boolean;
}

export interface DomainConfigDocument {
  version: typeof DOMAIN_CONFIG_VERSION;
  domain: string;
  exportedAt: string;
  settings: DomainConfigSettings;
}

/** The SSO settings as GET …/sso shows them: no secret, no metadata document. */
export function ssoSettingsView(sso: Tenant['sso']): Record<string, unknown> {
  const { saml, oauth, ...rest } = sso;
  const out: Record<string, unknown> = { ...rest };
  if (saml) {
    const { idpMetadataXml: _xml, ...shown } = saml;
    out.saml = shown;
  }
  if (oauth) {
    const { clientSecret, ...shown } = oauth;
    out.oauth = { ...shown, clientSecretSet: Boolean(clientSecret) };
  }
  return out;
}

export function domainConfigSettings(tenant: Tenant, mdm?: DomainConfigMdm): DomainConfigSettings {
  return {
    name: tenant.name,
    sso: ssoSettingsView(tenant.sso),
    serviceOrigins: tenant.serviceOrigins,
    logoutRedirectDomains: tenant.logoutRedirectDomains,
    ...(tenant.defaultServiceUrl ? { defaultServiceUrl: tenant.defaultServiceUrl } : {}),
    thirdPartyAppPasswordsAllowed: tenant.thirdPartyAppPasswordsAllowed,
    superAdminBreakGlass: tenant.superAdminBreakGlass,
    ...(mdm ? { mdm: { mode: mdm.mode, restrictOtherDomains: mdm.restrictOtherDomains } } : {}),
  };
}

export function exportDomainConfig(tenant: Tenant, mdm: DomainConfigMdm, now: number): DomainConfigDocument {
  return { version: DOMAIN_CONFIG_VERSION, domain: tenant.domain, exportedAt: new Date(now).toISOString(), settings: domainConfigSettings(tenant, mdm) };
}

/**
 * The MDM options an import asks for, completed as PUT …/mdm completes them (`configure`): a missing
 * `restrictOtherDomains` keeps the current one while the mode stays external, else false.
 */
export function targetMdm(current: DomainConfigMdm, asked: { mode: MdmMode; restrictOtherDomains?: boolean } | undefined): DomainConfigMdm {
  if (!asked) return { mode: current.mode, restrictOtherDomains: current.restrictOtherDomains };
  return { mode: asked.mode, restrictOtherDomains: asked.restrictOtherDomains ?? (asked.mode === 'external' ? current.restrictOtherDomains : false) };
}

/**
 * The document POST …/config takes: the export, with `settings.sso` validated by PUT …/sso's own schema
 * (passed in: it lives with that route), `settings.mdm` by PUT …/mdm's (without `customKey`), and the
 * other fields by the tenant schema's. `domain` and
 * `exportedAt` say where it came from; they are not applied.
 */
export function domainConfigSchema<S extends z.ZodType, M extends z.ZodType>(ssoSchema: S, mdmSchema: M) {
  return z.strictObject({
    version: z.literal(DOMAIN_CONFIG_VERSION),
    domain: z.string().max(253).optional(),
    exportedAt: z.string().max(40).optional(),
    settings: z.strictObject({
      name: tenantSchema.shape.name,
      sso: ssoSchema,
      serviceOrigins: z.array(originSchema).max(100),
      logoutRedirectDomains: tenantSchema.shape.logoutRedirectDomains.unwrap().max(100),
      defaultServiceUrl: z.string().url().nullable().optional(),
      thirdPartyAppPasswordsAllowed: z.boolean(),
      superAdminBreakGlass: z.boolean(),
      mdm: mdmSchema.optional(),
    }),
  });
}

export interface ConfigChange {
  /** Dotted path inside `settings` (array values compare whole). */
  path: string;
  from: unknown;
  to: unknown;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The differences between two settings documents, leaf by leaf, in key order. */
export function configChanges(from: unknown, to: unknown, path = ''): ConfigChange[] {
  if ((isPlainObject(from) || from === undefined) && (isPlainObject(to) || to === undefined) && (from !== undefined || to !== undefined)) {
    const a = (from ?? {});
    const b = (to ?? {});
    const names = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return names.flatMap((k) => configChanges(a[k], b[k], path ? `${path}.${k}` : k));
  }
  if (JSON.stringify(from) === JSON.stringify(to)) return [];
  return [{ path, from: from ?? null, to: to ?? null }];
}
