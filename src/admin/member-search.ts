import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Member } from '../domain/member.js';
import { compareUtf8, entriesOf, memberIndexOps, nameSuffixes, normaliseName, splitEntry } from '../domain/member-index.js';
import type { Tenant } from '../domain/tenant.js';
import { AppError } from '../errors/index.js';
import { keys, type AtomicOp, type KeyValueStore, type LexBound } from '../store/index.js';

/*
 * Member search (GET …/members) over the indexes of src/domain/member-index.ts.
 *
 * Without `q` a page walks the account index from the cursor: members come in account order. With `q`
 * the walk has three stages, each a prefix range of one index: accounts starting with q, then names
 * with a word sequence starting with q, then external keys starting with q (case-insensitive). A member
 * is shown in the first stage it matches only (decided from its record), and in the name stage only at
 * its first matching entry, so paging visits every match exactly once.
 *
 * Filters (status, role, hasExternalKey) are applied to the records read during the walk. One request
 * examines at most `budget` index entries (default 2,000: that many member reads, in pipelined MGETs);
 * a page can therefore come back short, with a nextCursor to go on from.
 */

export interface MemberSearchQuery {
  q?: string;
  status?: Member['status'];
  role?: Member['role'];
  hasExternalKey?: boolean;
  count: number;
  cursor?: string;
}

export interface MemberSearchPage {
  members: Member[];
  nextCursor: string | null;
  total: number;
}

const STAGE_INDEX = [keys.memberSearchByAccount, keys.memberSearchByName, keys.memberSearchByExternalKey] as const;
/** Index entries read per ZRANGEBYLEX (and member records per MGET). */
const READ_BATCH = 250;
const BUILD_BATCH = 500;
const BUILD_LOCK_TTL_MS = 30_000;
const BUILD_WAIT_MS = 30_000;

interface Cursor {
  /** Stage 0 (account), 1 (name), 2 (external key). */
  s: number;
  /** The last entry of that stage already dealt with. */
  a: string;
}

function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify(c), 'utf8').toString('base64url');
}

function decodeCursor(raw: string | undefined): Cursor | null {
  if (raw === undefined || raw === '') return null;
  const invalid = (): AppError => new AppError('validation_failed', { details: [{ path: 'cursor', message: 'not a cursor this API returned' }] });
  if (!/^[A-Za-z0-9_-]{1,1400}$/.test(raw)) throw invalid();
  try {
    const c = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as unknown;
    if (typeof c === 'object' && c !== null && [0, 1, 2].includes((c as Cursor).s) && typeof (c as Cursor).a === 'string' && (c as Cursor).a.includes('\0')) return c as Cursor;
  } catch {
    // fall through
  }
  throw invalid();
}

export interface MemberSearchOptions {
  /** Index entries (≈ member reads) one request examines at most. */
  budget?: number;
}

export class MemberSearch {
  private readonly budget: number;

  constructor(
    private readonly store: KeyValueStore,
    options: MemberSearchOptions = {},
  ) {
    this.budget = options.budget ?? 2000;
  }

  async search(tenant: Tenant, query: MemberSearchQuery): Promise<MemberSearchPage> {
    const { store } = this;
    const domain = tenant.domain;
    await this.ensureIndex(domain);
    const q = (query.q ?? '').trim();
    const prefixes = q === '' ? [''] : [q.toLowerCase(), normaliseName(q), q.toLowerCase()];
    const cursor = decodeCursor(query.cursor);
    let stage = cursor?.s ?? 0;
    let after: string | null = cursor?.a ?? null;
    const found: Member[] = [];
    let examined = 0;
    const page = (nextCursor: string | null): Promise<MemberSearchPage> =>
      store.sCard(keys.memberIds(domain)).then((total) => ({ members: found, nextCursor, total }));

    while (stage < prefixes.length && examined < this.budget) {
      const prefix = prefixes[stage]!;
      const min: LexBound = after !== null ? { value: after, exclusive: true } : prefix === '' ? '-' : { value: prefix };
      const want = Math.min(READ_BATCH, this.budget - examined);
      const entries = await store.zRangeByLex(STAGE_INDEX[stage]!(domain), min, '+', want);
      const inRange = entries.filter((e) => e.startsWith(prefix));
      const ids = inRange.map((e) => splitEntry(e).id);
      const records = await store.mGet(ids.map((id) => keys.member(domain, id)));
      for (let i = 0; i < inRange.length; i++) {
        const raw = records[i];
        examined++;
        after = inRange[i]!;
        if (raw === null || raw === undefined) continue;
        const member = JSON.parse(raw) as Member;
        if (!this.shownAt(member, stage, inRange[i]!, prefixes) || !matchesFilters(member, query)) continue;
        found.push(member);
        if (found.length === query.count) {
          const stageMayGoOn = inRange.length === entries.length && entries.length === want;
          const more = i < inRange.length - 1 || stageMayGoOn || stage < prefixes.length - 1;
          return page(more ? encodeCursor({ s: stage, a: after }) : null);
        }
      }
      if (inRange.length < entries.length || entries.length < want) {
        // This stage's range is exhausted.
        stage++;
        after = null;
      }
    }
    if (stage >= prefixes.length) return page(null);
    // Out of budget: go on from the last entry examined (or from the start of the next stage, which no
    // entry precedes: `<prefix>\0` sorts below every `<prefix>…\0<id>`).
    return page(encodeCursor({ s: stage, a: after ?? `${prefixes[stage]!}\0` }));
  }

  /** Whether `entry` (of stage `stage`) is where the walk shows `member`: a current entry of its, in its first matching stage. */
  private shownAt(member: Member, stage: number, entry: string, prefixes: string[]): boolean {
    const current = entriesOf(member);
    const [qAccount, qName, qKey] = prefixes;
    const accountMatches = member.account.startsWith(qAccount!);
    if (stage === 0) return current.account === entry && accountMatches;
    const matchingNames = nameSuffixes(member.name)
      .filter((s) => s.startsWith(qName!))
      .sort(compareUtf8);
    if (stage === 1) return !accountMatches && matchingNames.length > 0 && entry === `${matchingNames[0]}\0${member.id}`;
    return !accountMatches && matchingNames.length === 0 && current.externalKey === entry && Boolean(member.externalKey?.toLowerCase().startsWith(qKey!));
  }

  /**
   * Builds the indexes once for a tenant whose members were written before them (or by a process
   * without them): SSCAN over the member ids, one MULTI per batch, under a tenant lock; then marks the
   * tenant ready. Concurrent requests wait for the builder (up to 30 s).
   */
  async ensureIndex(domain: string): Promise<void> {
    const { store } = this;
    if ((await store.get(keys.memberSearchReady(domain))) !== null) return;
    const lockKey = keys.memberSearchBuildLock(domain);
    const lockValue = randomBytes(8).toString('hex');
    const started = Date.now();
    while (!(await store.set(lockKey, lockValue, { nx: true, ttlMs: BUILD_LOCK_TTL_MS }))) {
      if ((await store.get(keys.memberSearchReady(domain))) !== null) return;
      if (Date.now() - started > BUILD_WAIT_MS) {
        throw new AppError('conflict', { detail: 'member index build in progress', message: 'The member list is being prepared. Please retry in a moment.' });
      }
      await sleep(100);
    }
    try {
      if ((await store.get(keys.memberSearchReady(domain))) !== null) return;
      let cursor = '0';
      do {
        const [next, page] = await store.sScan(keys.memberIds(domain), cursor, BUILD_BATCH);
        cursor = next;
        const ids = [...new Set(page)];
        const records = await store.mGet(ids.map((id) => keys.member(domain, id)));
        const ops: AtomicOp[] = [];
        for (const raw of records) if (raw !== null) ops.push(...memberIndexOps(domain, null, JSON.parse(raw) as Member));
        await store.atomic(ops);
        if ((await store.get(lockKey)) !== lockValue) throw new AppError('conflict', { detail: 'member index build lock lost' });
        await store.expire(lockKey, BUILD_LOCK_TTL_MS);
      } while (cursor !== '0');
      await store.set(keys.memberSearchReady(domain), '1');
    } finally {
      if ((await store.get(lockKey).catch(() => null)) === lockValue) await store.del(lockKey).catch(() => 0);
    }
  }
}

function matchesFilters(m: Member, query: MemberSearchQuery): boolean {
  if (query.status !== undefined && m.status !== query.status) return false;
  if (query.role !== undefined && m.role !== query.role) return false;
  if (query.hasExternalKey !== undefined && Boolean(m.externalKey) !== query.hasExternalKey) return false;
  return true;
}
