import { AppError } from '../errors/index.js';

/*
 * `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9): which attributes a response carries.
 * `id` and `schemas` always go out. A path is `attr`, `attr.sub`, or either with its schema URN in front
 * (`urn:…:enterprise:2.0:User:department`); names are matched without regard to case.
 */

export interface Projection {
  attributes?: string[];
  excluded?: string[];
}

const CORE_PREFIX = /^urn:ietf:params:scim:schemas:core:2\.0:(user|group):/i;
const EXTENSION_PREFIX = /^(urn:ietf:params:scim:schemas:extension:[a-z0-9:.]+:[a-z]+):(.+)$/i;

/** Reads the two query parameters (comma-separated lists). */
export function projectionOf(query: Record<string, unknown>): Projection {
  const list = (v: unknown): string[] | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v.length > 2000) throw new AppError('scim_invalid_syntax', { detail: 'attributes list not a string' });
    return v.split(',').map((s) => s.trim()).filter(Boolean);
  };
  return { attributes: list(query.attributes), excluded: list(query.excludedAttributes) };
}

/** [top-level key, sub-attribute?] of a path, the key as the resource spells it. */
function locate(resource: Record<string, unknown>, path: string): [string, string | undefined] | null {
  let p = path.replace(CORE_PREFIX, '');
  const ext = EXTENSION_PREFIX.exec(p);
  const keyOf = (name: string): string | undefined => Object.keys(resource).find((k) => k.toLowerCase() === name.toLowerCase());
  if (ext) {
    const key = keyOf(ext[1]!);
    return key ? [key, ext[2]] : null;
  }
  const whole = keyOf(p);
  if (whole) return [whole, undefined];
  const dot = p.indexOf('.');
  if (dot < 0) return null;
  const key = keyOf(p.slice(0, dot));
  p = p.slice(dot + 1);
  return key ? [key, p] : null;
}

function subKey(value: unknown, name: string): string | undefined {
  return value && typeof value === 'object' && !Array.isArray(value) ? Object.keys(value).find((k) => k.toLowerCase() === name.toLowerCase()) : undefined;
}

/** Whether `name` (a top-level attribute, lower case) would be in the response: lets callers skip costly reads (a group's members). */
export function wants(p: Projection, name: string): boolean {
  if (p.attributes) return p.attributes.some((a) => a.replace(CORE_PREFIX, '').toLowerCase().split('.')[0] === name);
  if (p.excluded) return !p.excluded.some((a) => a.replace(CORE_PREFIX, '').toLowerCase() === name);
  return true;
}

export function project(resource: Record<string, unknown>, p: Projection): Record<string, unknown> {
  if (p.attributes && p.attributes.length) {
    const out: Record<string, unknown> = { schemas: resource.schemas, id: resource.id };
    for (const path of p.attributes) {
      const at = locate(resource, path);
      if (!at) continue;
      const [key, sub] = at;
      if (sub === undefined) {
        out[key] = resource[key];
        continue;
      }
      const k = subKey(resource[key], sub);
      if (!k) continue;
      const target = (out[key] ??= {}) as Record<string, unknown>;
      target[k] = (resource[key] as Record<string, unknown>)[k];
    }
    return out;
  }
  if (p.excluded && p.excluded.length) {
    const out: Record<string, unknown> = structuredClone(resource);
    for (const path of p.excluded) {
      const at = locate(out, path);
      if (!at || at[0] === 'id' || at[0] === 'schemas') continue;
      const [key, sub] = at;
      if (sub === undefined) delete out[key];
      else {
        const k = subKey(out[key], sub);
        if (k) delete (out[key] as Record<string, unknown>)[k];
      }
    }
    return out;
  }
  return resource;
}
