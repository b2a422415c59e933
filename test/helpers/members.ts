import assert from 'node:assert/strict';
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
