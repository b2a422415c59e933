import { compareUtf8, keys, type AtomicOp } from '../store/index.js';
import type { Member } from './member.js';

/*
 * The member search indexes (docs/spec.md §11, GET …/members): three lexicographic sorted sets per
 * tenant, so that a prefix search and ordered paging cost O(log n + page) at any tenant size.
 *
 *   by account       `<account>\0<id>`                 (accounts are stored lower-cased)
 *   by name          `<words i…n of the name>\0<id>`    for each word i (lower-cased, NFKC, ≤ 8 words)
 *   by external key  `<lower-cased key>\0<id>`
 *
 * Only fields that identify a member are indexed (account, name, external key): status and role
 * change on many paths (SSO switch, invitations …) and are filtered while walking instead. Every write
 * that changes an indexed field puts memberIndexOps in the MULTI that writes the record. A reader
 * checks every entry against the record it reads anyway (entriesOf), so an entry left behind by a
 * race (the one-time backfill reading a member just deleted) is skipped, never shown.
 */

export const NAME_WORDS_INDEXED = 8;

/** Name as searched: NFKC, lower-cased, words separated by one space. */
export function normaliseName(name: string): string {
  return name.normalize('NFKC').toLowerCase().trim().split(/\s+/u).filter(Boolean).join(' ');
}

/** Each suffix of the name's word sequence, longest first (so a query "kim min" matches "Kim Min-jun"). */
export function nameSuffixes(name: string): string[] {
  const words = normaliseName(name).split(' ').filter(Boolean);
  const out = new Set<string>();
  for (let i = 0; i < Math.min(words.length, NAME_WORDS_INDEXED); i++) out.add(words.slice(i).join(' '));
  return [...out];
}

export interface MemberEntries {
  account: string;
  names: string[];
  externalKey: string | null;
}

type Indexed = Pick<Member, 'id' | 'account' | 'name' | 'externalKey'>;

export function entriesOf(m: Indexed): MemberEntries {
  return {
    account: `${m.account}\0${m.id}`,
    names: nameSuffixes(m.name).map((s) => `${s}\0${m.id}`),
    externalKey: m.externalKey ? `${m.externalKey.toLowerCase()}\0${m.id}` : null,
  };
}

/** The value part of an entry (before the last NUL) and the member id (after it). */
export function splitEntry(entry: string): { value: string; id: string } {
  const at = entry.lastIndexOf('\0');
  return { value: entry.slice(0, at), id: entry.slice(at + 1) };
}

export { compareUtf8 };

/**
 * The index writes that take a member from `before` to `after` (null: absent), for the MULTI that
 * writes the record. Entries both have are left alone.
 */
export function memberIndexOps(domain: string, before: Indexed | null, after: Indexed | null): AtomicOp[] {
  const was = before ? entriesOf(before) : { account: null, names: [], externalKey: null };
  const now = after ? entriesOf(after) : { account: null, names: [], externalKey: null };
  const ops: AtomicOp[] = [];
  const diff = (key: string, old: Array<string | null>, next: Array<string | null>): void => {
    const o = old.filter((e): e is string => e !== null);
    const n = next.filter((e): e is string => e !== null);
    const removed = o.filter((e) => !n.includes(e));
    const added = n.filter((e) => !o.includes(e));
    if (removed.length) ops.push({ op: 'zRem', key, members: removed });
    if (added.length) ops.push({ op: 'zAdd', key, members: added });
  };
  diff(keys.memberSearchByAccount(domain), [was.account], [now.account]);
  diff(keys.memberSearchByName(domain), was.names, now.names);
  diff(keys.memberSearchByExternalKey(domain), [was.externalKey], [now.externalKey]);
  return ops;
}
