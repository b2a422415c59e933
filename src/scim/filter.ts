import { parse, Tester, type Filter } from 'scim2-parse-filter';
import { AppError } from '../errors/index.js';

/*
 * SCIM filters (RFC 7644 §3.4.2.2), parsed by scim2-parse-filter. Attribute names are matched without
 * regard to case; string comparisons too, except on caseExact attributes (id, externalId, RFC 7643 §3.1).
 */

export type ScimFilter = Filter;

const CASE_EXACT = new Set(['id', 'externalid']);
const MULTI_VALUED = new Set(['emails', 'phonenumbers', 'members']);
const COMPARE_OPS = new Set(['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'lt', 'ge', 'le']);
const MAX_FILTER_LENGTH = 2000;

/** The attributes a filter may name, per resource type (lower case; `a.b` for sub-attributes). */
export const FILTERABLE = {
  User: new Set([
    'id',
    'username',
    'externalid',
    'displayname',
    'active',
    'title',
    'emails',
    'emails.value',
    'emails.type',
    'emails.primary',
    'name.givenname',
    'name.familyname',
    'name.formatted',
    'meta.created',
    'meta.lastmodified',
    'urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:employeenumber',
    'urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:department',
  ]),
  Group: new Set(['id', 'displayname', 'externalid', 'members', 'members.value', 'meta.created', 'meta.lastmodified']),
} as const;

const CORE_PREFIX = /^urn:ietf:params:scim:schemas:core:2\.0:(user|group):/i;

function attrName(path: string): string {
  return path.replace(CORE_PREFIX, '').toLowerCase();
}

type CompValue = Parameters<Tester['eq']>[1];

class CaseAwareTester extends Tester {
  private exact = false;

  override test(r: unknown, f: Filter): boolean {
    if (!COMPARE_OPS.has(f.op)) return super.test(r, f);
    let path = (f as { attrPath: string }).attrPath.toLowerCase().replace(CORE_PREFIX, '');
    // A multi-valued complex attribute compared as a whole means its `value` (RFC 7644 §3.4.2.2: `emails co "…"`).
    if (MULTI_VALUED.has(path)) path = `${path}.value`;
    const last = path.slice(Math.max(path.lastIndexOf('.'), path.lastIndexOf(':')) + 1);
    const before = this.exact;
    this.exact = CASE_EXACT.has(last);
    try {
      return super.test(r, { ...f, attrPath: path } as Filter);
    } finally {
      this.exact = before;
    }
  }

  private fold<T>(v: T): T {
    return (!this.exact && typeof v === 'string' ? v.toLowerCase() : v) as T;
  }

  override eq(r: unknown, v: CompValue): boolean {
    return super.eq(this.fold(r), this.fold(v));
  }
  override ne(r: unknown, v: CompValue): boolean {
    return super.ne(this.fold(r), this.fold(v));
  }
  override co(r: unknown, v: CompValue): boolean {
    return super.co(this.fold(r), this.fold(v));
  }
  override sw(r: unknown, v: CompValue): boolean {
    return super.sw(this.fold(r), this.fold(v));
  }
  override ew(r: unknown, v: CompValue): boolean {
    return super.ew(this.fold(r), this.fold(v));
  }
}

const tester = new CaseAwareTester();

/** Whether a SCIM resource (as the API shows it) passes the filter. */
export function matches(resource: unknown, filter: ScimFilter): boolean {
  return tester.test(resource, filter);
}

function checkAttributes(f: Filter, allowed: ReadonlySet<string>, prefix = ''): void {
  switch (f.op) {
    case 'and':
    case 'or':
      for (const c of (f as { filters: Filter[] }).filters) checkAttributes(c, allowed, prefix);
      return;
    case 'not':
      checkAttributes((f as { filter: Filter }).filter, allowed, prefix);
      return;
    case '[]': {
      const vp = f as { attrPath: string; valFilter: Filter };
      const name = attrName(vp.attrPath);
      if (!allowed.has(name)) throw invalid(`attribute ${name} not filterable`);
      checkAttributes(vp.valFilter, allowed, `${name}.`);
      return;
    }
    default: {
      const name = prefix + attrName((f as { attrPath: string }).attrPath);
      if (!allowed.has(name)) throw invalid(`attribute ${name} not filterable`);
    }
  }
}

const invalid = (detail: string): AppError => new AppError('scim_invalid_filter', { detail });

/** Parses `filter=` for a resource type; 400 invalidFilter when it does not parse or names an attribute that cannot be filtered on. */
export function parseFilter(text: string, resourceType: keyof typeof FILTERABLE): ScimFilter {
  if (text.length > MAX_FILTER_LENGTH) throw invalid('filter too long');
  let f: Filter;
  try {
    f = parse(text);
  } catch (err) {
    throw new AppError('scim_invalid_filter', { detail: 'filter does not parse', cause: err });
  }
  checkAttributes(f, FILTERABLE[resourceType]);
  return f;
}

/** `attr eq "value"` on one of `names` (lower case), else null: the lookups an index answers. */
export function equalityOn(f: ScimFilter, names: readonly string[]): { name: string; value: string } | null {
  if (f.op !== 'eq') return null;
  const { attrPath, compValue } = f as { attrPath: string; compValue: unknown };
  const name = attrName(attrPath);
  return names.includes(name) && typeof compValue === 'string' ? { name, value: compValue } : null;
}
