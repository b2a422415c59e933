import { createHash } from 'node:crypto';
import { accountSchema, externalKeySchema, type Member } from '../domain/member.js';
import { AppError } from '../errors/index.js';
import { URN } from './schema-documents.js';

/*
 * A SCIM User ↔ a member (docs/spec.md §14): userName ↔ account, externalId ↔ external key, active ↔
 * status (false = suspended), displayName (or name) ↔ name. The SCIM attributes the member has no field
 * for (name parts, emails, title, the enterprise extension …) are kept beside it (keys.scimUser), written
 * in the member's MULTI.
 */

export interface MultiValue {
  value?: string;
  type?: string;
  display?: string;
  primary?: boolean;
}

/** The SCIM-only attributes of a provisioned member. */
export interface ScimUserExtra {
  name?: Record<string, string>;
  displayName?: string;
  nickName?: string;
  title?: string;
  userType?: string;
  preferredLanguage?: string;
  locale?: string;
  timezone?: string;
  emails?: MultiValue[];
  phoneNumbers?: MultiValue[];
  enterprise?: Record<string, unknown>;
  /** ms since the epoch of the last SCIM write. */
  lastModified?: number;
}

/** What a SCIM User body asks for. */
export interface ScimUserInput {
  account: string;
  externalKey: string | undefined;
  name: string;
  /** undefined when the body did not say. */
  active: boolean | undefined;
  extra: ScimUserExtra;
}

const STRINGS = ['displayName', 'nickName', 'title', 'userType', 'preferredLanguage', 'locale', 'timezone'] as const;
const NAME_PARTS = ['formatted', 'familyName', 'givenName', 'middleName', 'honorificPrefix', 'honorificSuffix'];
const ENTERPRISE_STRINGS = ['employeeNumber', 'costCenter', 'organization', 'division', 'department'];
const MAX_STRING = 1024;
const MAX_VALUES = 20;

const bad = (attribute: string, why: string): AppError => new AppError('scim_invalid_value', { detail: `${attribute}: ${why}`, message: `The SCIM attribute ${attribute} ${why}.` });

/** The key of `o` named `name` whatever its case (SCIM attribute names are case-insensitive). */
function field(o: Record<string, unknown>, name: string): unknown {
  const key = Object.keys(o).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : o[key];
}

function str(o: Record<string, unknown>, name: string, path = name): string | undefined {
  const v = field(o, name);
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw bad(path, 'must be a string');
  if (v.length > MAX_STRING) throw bad(path, `must be at most ${MAX_STRING} characters`);
  return v;
}

/** Entra ID sends booleans as strings ("True", "False"). */
export function scimBoolean(v: unknown, path: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' && /^(true|false)$/i.test(v)) return v.toLowerCase() === 'true';
  throw bad(path, 'must be true or false');
}

function obj(v: unknown, path: string): Record<string, unknown> | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw bad(path, 'must be an object');
  return v as Record<string, unknown>;
}

function multiValues(o: Record<string, unknown>, name: string): MultiValue[] | undefined {
  const v = field(o, name);
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw bad(name, 'must be a list');
  if (v.length > MAX_VALUES) throw bad(name, `must have at most ${MAX_VALUES} values`);
  return v.map((item, i) => {
    const e = obj(item, `${name}[${i}]`) ?? {};
    const out: MultiValue = {};
    for (const k of ['value', 'type', 'display'] as const) {
      const s = str(e, k, `${name}[${i}].${k}`);
      if (s !== undefined) out[k] = s;
    }
    const primary = scimBoolean(field(e, 'primary'), `${name}[${i}].primary`);
    if (primary !== undefined) out.primary = primary;
    return out;
  });
}

/** Reads a SCIM User body (POST, PUT, or the result of a PATCH); 400 invalidValue on what cannot be a member. */
export function readScimUser(body: unknown): ScimUserInput {
  const o = obj(body, 'the body');
  if (!o) throw new AppError('scim_invalid_syntax', { detail: 'body is not an object' });
  const userName = str(o, 'userName');
  if (!userName) throw bad('userName', 'is required');
  const account = accountSchema.safeParse(userName);
  if (!account.success) throw bad('userName', 'must be an account such as user@example.com');
  const externalId = field(o, 'externalId');
  let externalKey: string | undefined;
  if (externalId !== undefined && externalId !== null && externalId !== '') {
    const parsed = externalKeySchema.safeParse(externalId);
    if (!parsed.success) throw bad('externalId', 'must be at most 100 characters, none of % \\ # / ? or control characters');
    externalKey = parsed.data;
  }
  const extra: ScimUserExtra = {};
  for (const k of STRINGS) {
    const s = str(o, k);
    if (s !== undefined) extra[k] = s;
  }
  const name = obj(field(o, 'name'), 'name');
  if (name) {
    const parts: Record<string, string> = {};
    for (const k of NAME_PARTS) {
      const s = str(name, k, `name.${k}`);
      if (s !== undefined) parts[k] = s;
    }
    if (Object.keys(parts).length) extra.name = parts;
  }
  const emails = multiValues(o, 'emails');
  if (emails?.length) extra.emails = emails;
  const phones = multiValues(o, 'phoneNumbers');
  if (phones?.length) extra.phoneNumbers = phones;
  const ent = obj(field(o, URN.enterprise), URN.enterprise);
  if (ent) {
    const e: Record<string, unknown> = {};
    for (const k of ENTERPRISE_STRINGS) {
      const s = str(ent, k, `${URN.enterprise}:${k}`);
      if (s !== undefined) e[k] = s;
    }
    const manager = field(ent, 'manager');
    // Entra sends the manager as an object {value}, or (PATCH replace) as the bare id.
    const managerId = typeof manager === 'string' ? manager : typeof manager === 'object' && manager !== null ? str(manager as Record<string, unknown>, 'value', 'manager.value') : undefined;
    if (managerId) e.manager = { value: managerId.slice(0, MAX_STRING) };
    if (Object.keys(e).length) extra.enterprise = e;
  }
  const display = extra.displayName ?? extra.name?.formatted ?? ([extra.name?.givenName, extra.name?.familyName].filter(Boolean).join(' ') || account.data);
  return { account: account.data, externalKey, name: display.slice(0, 200), active: scimBoolean(field(o, 'active'), 'active'), extra };
}

/** A member is active unless suspended or awaiting approval. */
export function isActive(m: Member): boolean {
  return m.status !== 'suspended' && m.status !== 'unapproved';
}

/** The member as a SCIM User (RFC 7643 §4.1), with meta.version a weak ETag of everything else. */
export function toScimUser(m: Member, extra: ScimUserExtra | null, base: string, groups?: Array<{ value: string; display: string }>): Record<string, unknown> {
  const e = extra ?? {};
  const created = new Date(m.createdAt ?? 0).toISOString();
  const user: Record<string, unknown> = {
    schemas: e.enterprise ? [URN.user, URN.enterprise] : [URN.user],
    id: m.id,
    ...(m.externalKey ? { externalId: m.externalKey } : {}),
    userName: m.account,
    name: e.name ?? { formatted: m.name },
    displayName: e.displayName ?? m.name,
    ...(e.nickName ? { nickName: e.nickName } : {}),
    ...(e.title ? { title: e.title } : {}),
    ...(e.userType ? { userType: e.userType } : {}),
    ...(e.preferredLanguage ? { preferredLanguage: e.preferredLanguage } : {}),
    ...(e.locale ? { locale: e.locale } : {}),
    ...(e.timezone ? { timezone: e.timezone } : {}),
    active: isActive(m),
    ...(e.emails ? { emails: e.emails } : {}),
    ...(e.phoneNumbers ? { phoneNumbers: e.phoneNumbers } : {}),
    ...(groups ? { groups } : {}),
    ...(e.enterprise ? { [URN.enterprise]: e.enterprise } : {}),
  };
  const version = etagOf({ ...user, groups: undefined, status: m.status, role: m.role });
  user.meta = { resourceType: 'User', created, lastModified: new Date(e.lastModified ?? m.createdAt ?? 0).toISOString(), location: `${base}/Users/${m.id}`, version };
  return user;
}

export function etagOf(value: unknown): string {
  return `W/"${createHash('sha256').update(JSON.stringify(value)).digest('base64url').slice(0, 22)}"`;
}
