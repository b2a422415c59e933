import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError } from './config/index.js';
import { memberRoleSchema, memberStatusSchema } from './domain/member.js';
import type { MemberRepository } from './domain/members.js';
import { tenantSchema } from './domain/tenant.js';
import type { TenantRepository } from './domain/tenants.js';
import { normaliseCertificatePem } from './sso/saml/certificates.js';
import { assertUnsolicitedLanding } from './domain/unsolicited-landing.js';
import { applyIdpMetadata, parseIdpMetadata } from './sso/saml/idp-metadata.js';
import { isAppError } from './errors/index.js';
import { hashPassword } from './domain/passwords.js';

const seedMemberSchema = z.strictObject({
  id: z.string().min(1).max(64).optional(),
  account: z.string(),
  name: z.string(),
  externalKey: z.string().optional(),
  role: memberRoleSchema.optional(),
  status: memberStatusSchema.optional(),
  /** Demo only: hashed (scrypt) when the seed is applied. */
  password: z.string().optional(),
});

const seedSchema = z.strictObject({
  tenants: z.array(tenantSchema.extend({ members: z.array(seedMemberSchema).default([]) })).default([]),
  demoIdp: z
    .strictObject({
      users: z.array(z.strictObject({ username: z.string(), password: z.string(), nameId: z.string() })).default([]),
      oauthClient: z.strictObject({ clientId: z.string(), clientSecret: z.string() }).optional(),
    })
    .optional(),
});
export type Seed = z.infer<typeof seedSchema>;

/**
 * Reads a seed file (config/demo-tenants.json). Strings may hold `{{publicUrl}}`, and a string that is
 * exactly `@file:<path>` is replaced by that file's text (used for the demo IdP certificate).
 */
export function readSeed(path: string, publicUrl: string, cwd = process.cwd()): Seed {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(resolve(cwd, path), 'utf8'));
  } catch (err) {
    throw new ConfigError(`seedFile: cannot read ${path}: ${(err as Error).message}`);
  }
  const expand = (v: unknown): unknown => {
    if (typeof v === 'string') {
      if (v.startsWith('@file:')) return readFileSync(resolve(cwd, v.slice(6)), 'utf8');
      return v.replaceAll('{{publicUrl}}', publicUrl);
    }
    if (Array.isArray(v)) return v.map(expand);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, expand(x)]));
    return v;
  };
  const parsed = seedSchema.safeParse(expand(raw));
  if (!parsed.success) {
    throw new ConfigError(`seedFile ${path} is invalid:\n${parsed.error.issues.map((i) => `  - ${i.path.join('.')}: ${i.message}`).join('\n')}`);
  }
  return parsed.data;
}

/** Writes the seed's tenants and members (idempotent: re-running replaces them with the same values). */
export async function applySeed(seed: Seed, repos: { tenants: TenantRepository; members: MemberRepository }, gateway?: { defaultServiceUrl?: string }): Promise<void> {
  for (const { members, ...input } of seed.tenants) {
    let tenant = input;
    try {
      const saml = tenant.sso.saml;
      if (saml?.idpMetadataXml) tenant = { ...tenant, sso: applyIdpMetadata(tenant.sso, parseIdpMetadata(saml.idpMetadataXml), saml.idpMetadataXml) };
      if (tenant.sso.saml) {
        tenant = { ...tenant, sso: { ...tenant.sso, saml: { ...tenant.sso.saml, idpCertificates: tenant.sso.saml.idpCertificates.map(normaliseCertificatePem) } } };
      }
      // S-9: a seeded tenant that allows unsolicited logins needs somewhere for them to land.
      if (gateway) assertUnsolicitedLanding(tenant.sso, tenant.defaultServiceUrl ?? gateway.defaultServiceUrl);
    } catch (err) {
      if (isAppError(err)) throw new ConfigError(`seedFile: tenant ${input.domain}: ${err.publicMessage} (${err.detail ?? err.code})`);
      throw err;
    }
    await repos.tenants.save(tenant);
    for (const { password, ...m } of members) {
      const passwordHash = password === undefined ? undefined : await hashPassword(password);
      await repos.members.save(tenant.domain, { ...m, role: m.role ?? 'member', status: m.status ?? 'in_use', passwordHash });
    }
  }
}
