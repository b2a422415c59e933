import { z } from 'zod';
import { originSchema, tenantSchema, type Tenant } from '../domain/tenant.js';

/**
 * A domain's configuration as one document (issue 18): what moves a tested setup from staging to
 * production. `settings` holds the tenant's SSO settings in the shape GET …/sso gives and PUT …/sso takes
 * (no secret: `oauth.clientSecretSet` instead, no stored metadata document), its allowlists and its
 * restrictions. Not in it: the domain itself, the plan and group (the operator's), members, keys, the
 * password policy and login retention (S-23 keeps them apart from SSO), MDM settings (their own API).
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

export function domainConfigSettings(tenant: Tenant): DomainConfigSettings {
  return {
    name: tenant.name,
    sso: ssoSettingsView(tenant.sso),
    serviceOrigins: tenant.serviceOrigins,
    logoutRedirectDomains: tenant.logoutRedirectDomains,
    ...(tenant.defaultServiceUrl ? { defaultServiceUrl: tenant.defaultServiceUrl } : {}),
    thirdPartyAppPasswordsAllowed: tenant.thirdPartyAppPasswordsAllowed,
    superAdminBreakGlass: tenant.superAdminBreakGlass,
  };
}

export function exportDomainConfig(tenant: Tenant, now: number): DomainConfigDocument {
  return { version: DOMAIN_CONFIG_VERSION, domain: tenant.domain, exportedAt: new Date(now).toISOString(), settings: domainConfigSettings(tenant) };
}

/**
 * The document POST …/config takes: the export, with `settings.sso` validated by PUT …/sso's own schema
 * (passed in: it lives with that route) and the other fields by the tenant schema's. `domain` and
 * `exportedAt` say where it came from; they are not applied.
 */
export function domainConfigSchema<S extends z.ZodType>(ssoSchema: S) {
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
