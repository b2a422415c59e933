import assert from 'node:assert/strict';
import type { Member } from '../../src/domain/member.js';
import { entriesOf } from '../../src/domain/member-index.js';
import { keys } from '../../src/store/index.js';
import type { Gateway } from './gateway.js';

/** Every member record and the external-key index of a tenant, to prove nothing changed. */
export async function memberSnapshot(gw: Gateway, domain: string): Promise<string> {
  const ids = (await gw.store.sMembers(keys.memberIds(domain))).sort();
  const members = await Promise.all(ids.map((id) => gw.store.get(keys.member(domain, id))));
  const index = await gw.store.hGetAll(keys.memberByExternalKey(domain));
  return JSON.stringify({ members, index: Object.entries(index).sort() });
}

export async function externalKeyOf(gw: Gateway, domain: string, id: string): Promise<string | null> {
  return (await gw.services.members.findById(domain, id))?.externalKey ?? null;
}

/** The external-key index and the member records agree, for every member of the tenant. */
export async function assertExternalKeyIndexConsistent(gw: Gateway, domain: string): Promise<void> {
  const index = await gw.store.hGetAll(keys.memberByExternalKey(domain));
  const fromMembers: Record<string, string> = {};
  for (const id of await gw.store.sMembers(keys.memberIds(domain))) {
    const key = await externalKeyOf(gw, domain, id);
    if (key !== null) fromMembers[key] = id;
  }
  assert.deepEqual(index, fromMembers);
}

/** The three member search indexes hold exactly the entries the tenant's member records give (no leftovers, none missing). */
export async function assertSearchIndexConsistent(gw: Gateway, domain: string): Promise<void> {
  const want = { account: [] as string[], name: [] as string[], key: [] as string[] };
  for (const id of await gw.store.sMembers(keys.memberIds(domain))) {
    const raw = await gw.store.get(keys.member(domain, id));
    assert.ok(raw, `member ${id} is in the id set but has no record`);
    const e = entriesOf(JSON.parse(raw) as Member);
    want.account.push(e.account);
    want.name.push(...e.names);
    if (e.externalKey) want.key.push(e.externalKey);
  }
  const all = (key: string): Promise<string[]> => gw.store.zRangeByLex(key, '-', '+', 1_000_000);
  assert.deepEqual((await all(keys.memberSearchByAccount(domain))).sort(), want.account.sort());
  assert.deepEqual((await all(keys.memberSearchByName(domain))).sort(), want.name.sort());
  assert.deepEqual((await all(keys.memberSearchByExternalKey(domain))).sort(), want.key.sort());
}
