import type { TenantInput } from '../../../src/domain/tenant.js';
import type { MdmAdmission, MdmSessionEnder } from '../../../src/mdm/mdm-keys.js';
import { RedisStore } from '../../../src/store/index.js';
import { scanKeys } from '../../helpers/redis.js';
import type { Gateway } from '../../helpers/gateway.js';

import { OPERATOR_AUTH } from '../../helpers/gateway.js';

export const OPERATOR = OPERATOR_AUTH;

export const tenant = (domain: string, plan: 'free' | 'standard' | 'advanced', group?: string): TenantInput => ({
  domain,
  name: `Tenant ${domain}`,
  plan,
  ...(group ? { group } : {}),
});

/** Admin API calls of the MDM resources, as the operator. */
export function mdmAdmin(gw: Gateway) {
  const at = (d: string, rest = ''): string => `/admin/v1/domains/${d}/mdm${rest}`;
  return {
    put: (d: string, body: Record<string, unknown>) => gw.http.put(at(d)).set('Authorization', OPERATOR).send(body),
    get: (d: string) => gw.http.get(at(d)).set('Authorization', OPERATOR),
    list: (d: string) => gw.http.get(at(d, '/keys')).set('Authorization', OPERATOR),
    add: (d: string, body: Record<string, unknown> = {}) => gw.http.post(at(d, '/keys')).set('Authorization', OPERATOR).send(body),
    reissue: (d: string, body: Record<string, unknown> = {}) => gw.http.post(at(d, '/keys:reissue')).set('Authorization', OPERATOR).send(body),
    revoke: (d: string, id: string, replacement?: string) =>
      gw.http.delete(at(d, `/keys/${id}${replacement === undefined ? '' : `?replacement=${encodeURIComponent(replacement)}`}`)).set('Authorization', OPERATOR),
    preview: (d: string, body: Record<string, unknown>) => gw.http.post(at(d, '/preview')).set('Authorization', OPERATOR).send(body),
    deleteException: (d: string, id: string) => gw.http.delete(at(d, `/builtin-exceptions/${id}`)).set('Authorization', OPERATOR),
    reveal: (d: string, id: string) => gw.http.get(at(d, `/keys/${id}/value`)).set('Authorization', OPERATOR),
    exceptions: (d: string) => gw.http.get(at(d, '/builtin-exceptions')).set('Authorization', OPERATOR),
    addException: (d: string, body: Record<string, unknown>) => gw.http.post(at(d, '/builtin-exceptions')).set('Authorization', OPERATOR).send(body),
  };
}

/** A session ender standing in for the OpenID Provider: records what it was asked to end. */
export class RecordingEnder implements MdmSessionEnder {
  readonly ended: MdmAdmission[] = [];
  readonly except: Array<{ domain: string; keep: string[] }> = [];
  endMobileSessions(_domain: string, admissions: readonly MdmAdmission[]): Promise<number> {
    this.ended.push(...admissions);
    return Promise.resolve(admissions.length);
  }
  endMobileSessionsExcept(domain: string, keep: readonly string[]): Promise<number> {
    this.except.push({ domain, keep: [...keep] });
    return Promise.resolve(0);
  }
}

/** Every Redis key of the gateway (name and content) that contains `needle`. */
export async function storeKeysHolding(gw: Gateway, needle: string): Promise<string[]> {
  const store = gw.store;
  if (!(store instanceof RedisStore)) throw new Error('needs the Redis store');
  const client = store.client;
  const found: string[] = [];
  for (const full of await scanKeys(store, '*')) {
    const key = full.slice(store.keyPrefix.length);
    const type = await client.type(key);
    let content: unknown;
    if (type === 'string') content = await client.get(key);
    else if (type === 'hash') content = await client.hgetall(key);
    else if (type === 'set') content = await client.smembers(key);
    else if (type === 'list') content = await client.lrange(key, 0, -1);
    if (key.includes(needle) || JSON.stringify(content ?? '').includes(needle)) found.push(key);
  }
  return found;
}

let deviceCounter = 0;
/** A fresh device id, so the per-device failure limit never interferes with a test that is not about it. */
export const freshDevice = (): string => `device-${process.pid}-${++deviceCounter}`;
