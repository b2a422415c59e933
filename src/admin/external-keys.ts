import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Clock } from '../domain/clock.js';
import { externalKeySchema, type Member } from '../domain/member.js';
import { memberIndexOps } from '../domain/member-index.js';
import type { MemberRepository } from '../domain/members.js';
import type { Tenant } from '../domain/tenant.js';
import { AppError } from '../errors/index.js';
import { keys, LeaseLock, type AtomicOp, type KeyValueStore } from '../store/index.js';
import { csvCell, readCsv } from './csv.js';
import { CsvValidation, keysRequired, type ImportPlan } from './external-keys-csv.js';

export { csvCell, uncsvCell, type CsvRowError } from './csv.js';

/*
 * External keys in bulk (S-27) and as a CSV file (S-28).
 *
 * Every bulk change of a tenant's external keys runs under one tenant lock (`externalKeysLock`), so a
 * validation is never made stale by another bulk change. Single-member PATCH (S-26) goes through
 * MemberRepository.save and is not coordinated with the lock: a PATCH racing an import — or landing
 * while an interrupted import waits for the next request — loses to it (a key the import hands out is
 * taken from the member the PATCH gave it to, in the same MULTI), so a key never has two holders.
 *
 * CSV import, all-or-nothing for up to 100,000 rows:
 *   1. validate the whole stream (nothing written); the plan — only rows that change something — is
 *      kept compactly in memory (one short string per changed row plus two maps for duplicates);
 *   2. stage the plan in batch hashes under a job record (`externalKeyImportJob`, state `staging`);
 *   3. commit: the job flips to `applying` — from here the import WILL complete;
 *   4. apply batch by batch, each batch in one MULTI on the tenant's slot together with deleting its
 *      staged hash and advancing the job, so a batch is applied exactly once.
 * An interrupted import is finished by the next external-key request of the tenant (GET or PUT of the
 * CSV, GET or POST of the bulk API): a committed job is applied to the end, an uncommitted one is
 * discarded (its file was never acknowledged).
 */

const MEMBER_ID_RE = /^[A-Za-z0-9._:-]{1,64}$/;
const EXTERNAL_KEY_ID_PREFIX = 'externalKey:';
/** SSCAN COUNT hint for listings; constant so a cursor into the middle of a page can be re-read. */
const LIST_SCAN_COUNT = 100;
/** Members one list request examines at most when filtering (the rest is behind `nextCursor`). */
const LIST_MAX_EXAMINED = 10_000;
const EXPORT_SCAN_COUNT = 500;
const NONE: Promise<null> = Promise.resolve(null);

export interface ExternalKeyView {
  id: string;
  account: string;
  externalKey: string | null;
}

export interface ExternalKeyListItem extends ExternalKeyView {
  name: string;
}

export interface BulkItem {
  /** A member id, an account, or `externalKey:<value>`. */
  id: string;
  externalKey: string | null;
}

export interface ImportCounts {
  updated: number;
  removed: number;
  unchanged: number;
}

/** An import of an earlier request that this request finished (for the audit trail). */
export interface ResumedImport {
  jobId: string;
  counts: ImportCounts;
  startedAt: string;
}

export interface ImportResult extends ImportCounts {
  jobId: string | null;
  resumed: ResumedImport | null;
}

export interface BulkResult {
  users: ExternalKeyView[];
  changed: number;
  resumed: ResumedImport | null;
}

interface ImportJob {
  id: string;
  /** `staging`: batches being written, not yet acknowledged; `applying`: committed. */
  state: 'staging' | 'applying';
  batches: number;
  /** Batches staged so far (while staging). */
  staged: number;
  /** The next batch to apply (while applying). */
  next: number;
  counts: ImportCounts;
  startedAt: number;
}

export interface ExternalKeysDeps {
  store: KeyValueStore;
  members: MemberRepository;
  clock: Clock;
  /** Changed rows per staged batch (= per MULTI when applying). */
  batchSize?: number;
  /** Data rows a CSV may hold. */
  maxRows?: number;
  /** Row errors reported at most (the list says when it was cut). */
  maxErrors?: number;
  /** Bytes a CSV upload may have. */
  maxBytes?: number;
  /** Test seam: runs after each applied batch (a test interrupts the import here). */
  afterApplyBatch?: (domain: string, batch: number) => Promise<void>;
}

export const CSV_HEADER = 'account,name,externalKey';

/**
 * The per-tenant external-keys lock (every bulk writer of external keys, and members.csv, holds it): a
 * LeaseLock — a short lease renewed while its holder runs, released when it fails; a refusal says how long
 * the lease has left (Retry-After).
 */
export type TenantLock = LeaseLock;
export const TenantLock = {
  acquire: (store: KeyValueStore, domain: string): Promise<LeaseLock> =>
    LeaseLock.acquire(store, keys.externalKeysLock(domain), {
      busy: (retryAfterSeconds) =>
        new AppError('conflict', {
          detail: 'external-keys lock held',
          message: 'External keys of this organisation are being changed right now. Please retry in a moment.',
          retryAfterSeconds,
        }),
      lost: () => new AppError('conflict', { detail: 'external-keys lock lost' }),
    }),
};

/**
 * External keys in bulk: the S-27 API (resolve, validate, refuse clashes, apply in one MULTI), the
 * paged listing, and the S-28 CSV export (streamed) and import (streamed, staged, resumable).
 */
/** Who asks: without the super permission, a super admin's external key is not theirs to change. */
export interface KeyChangeOptions {
  allowSuperAdmin?: boolean;
}

/**
 * 403: an admin who could change a super admin's external key could sign in as them at the IdP
 * (docs/spec.md §11, the super permission).
 */
function superAdminRefusal(): AppError {
  return new AppError('forbidden', { message: "Only a super admin may change a super admin's external key.", detail: 'external key change touches a super admin' });
}

export class ExternalKeys {
  private readonly batchSize: number;
  private readonly maxRows: number;
  private readonly maxErrors: number;
  private readonly maxBytes: number;

  constructor(private readonly deps: ExternalKeysDeps) {
    this.batchSize = deps.batchSize ?? 500;
    this.maxRows = deps.maxRows ?? 100_000;
    this.maxErrors = deps.maxErrors ?? 1000;
    this.maxBytes = deps.maxBytes ?? 64 * 1024 * 1024;
  }

  // ---------------------------------------------------------------- S-27 bulk API

  /** A member by id, account (contains `@`), or `externalKey:<value>`; null when there is none. */
  async resolve(domain: string, id: string): Promise<Member | null> {
    const { members } = this.deps;
    if (id.startsWith(EXTERNAL_KEY_ID_PREFIX)) {
      const key = id.slice(EXTERNAL_KEY_ID_PREFIX.length);
      return key === '' ? null : members.findByExternalKey(domain, key);
    }
    if (id.includes('@')) return members.findByAccount(domain, id);
    return MEMBER_ID_RE.test(id) ? members.findById(domain, id) : null;
  }

  /**
   * S-27: all-or-nothing. Every id is resolved (404 naming the indexes), every key validated (400),
   * the final mapping computed — keys released by the request may be reused in it — and any clash
   * refused (409) before one MULTI writes members and index entries together.
   */
  async update(tenant: Tenant, items: BulkItem[], options: KeyChangeOptions = {}): Promise<BulkResult> {
    const { store } = this.deps;
    const domain = tenant.domain;
    const lock = await TenantLock.acquire(store, domain);
    try {
      const resumed = await this.finishPendingLocked(domain, lock);

      const members = await Promise.all(items.map((item) => this.resolve(domain, item.id)));
      const unknown = members.flatMap((m, index) => (m ? [] : [{ index, id: items[index]!.id.slice(0, 200) }]));
      if (unknown.length > 0) throw new AppError('unknown_member', { details: { unknown }, detail: `unknown members at ${unknown.map((u) => u.index).join(',')}` });
      const resolved = members as Member[];
      if (options.allowSuperAdmin === false && resolved.some((m) => m.role === 'super_admin')) throw superAdminRefusal();

      const issues: Array<{ path: string; message: string }> = [];
      const indexOfMember = new Map<string, number>();
      resolved.forEach((m, index) => {
        const first = indexOfMember.get(m.id);
        if (first !== undefined) issues.push({ path: `users.${index}.id`, message: `names the same member as users.${first}.id` });
        else indexOfMember.set(m.id, index);
      });
      items.forEach((item, index) => {
        if (item.externalKey === null) return;
        const parsed = externalKeySchema.safeParse(item.externalKey);
        if (!parsed.success) for (const i of parsed.error.issues) issues.push({ path: `users.${index}.externalKey`, message: i.message });
      });
      if (issues.length > 0) {
        throw new AppError('validation_failed', { details: issues, detail: issues.map((i) => `${i.path}: ${i.message}`).join('; ').slice(0, 500) });
      }
      if (keysRequired(tenant)) {
        const removing = items.flatMap((item, index) => (item.externalKey === null && resolved[index]!.externalKey ? [index] : []));
        if (removing.length > 0) throw new AppError('external_key_required', { details: { indexes: removing } });
      }

      // The final mapping: every key given by the request, then anything still held outside it.
      const conflicts: Array<{ index: number; externalKey: string; otherIndex?: number; heldBy?: { id: string; account: string } }> = [];
      const indexOfKey = new Map<string, number>();
      items.forEach((item, index) => {
        if (item.externalKey === null) return;
        const first = indexOfKey.get(item.externalKey);
        if (first !== undefined) conflicts.push({ index, externalKey: item.externalKey, otherIndex: first });
        else indexOfKey.set(item.externalKey, index);
      });
      const claimed = [...indexOfKey];
      const holders = await Promise.all(claimed.map(([key]) => store.hGet(keys.memberByExternalKey(domain), key)));
      const outsiders = await Promise.all(
        claimed.map(([, index], i) => {
          const holder = holders[i];
          return holder && holder !== resolved[index]!.id && !indexOfMember.has(holder) ? this.deps.members.findById(domain, holder) : Promise.resolve(null);
        }),
      );
      claimed.forEach(([key, index], i) => {
        const holder = holders[i];
        if (!holder || holder === resolved[index]!.id || indexOfMember.has(holder)) return;
        const other = outsiders[i];
        conflicts.push({ index, externalKey: key, heldBy: { id: holder, account: other?.account ?? '' } });
      });
      if (conflicts.length > 0) {
        conflicts.sort((a, b) => a.index - b.index);
        throw new AppError('external_key_conflict', { details: { conflicts }, detail: `clashes at ${conflicts.map((c) => c.index).join(',')}` });
      }

      const ops: AtomicOp[] = [];
      const released: string[] = [];
      const claimedFields: Record<string, string> = {};
      const result: ExternalKeyView[] = [];
      let changed = 0;
      resolved.forEach((m, index) => {
        const key = items[index]!.externalKey;
        result.push({ id: m.id, account: m.account, externalKey: key });
        if ((m.externalKey ?? null) === key) return;
        changed++;
        const next = withExternalKey(m, key);
        ops.push({ op: 'set', key: keys.member(domain, m.id), value: JSON.stringify(next) }, ...memberIndexOps(domain, m, next));
        if (key !== null) claimedFields[key] = m.id;
        if (m.externalKey && !indexOfKey.has(m.externalKey)) released.push(m.externalKey);
      });
      ops.push({ op: 'hDel', key: keys.memberByExternalKey(domain), fields: released }, { op: 'hSet', key: keys.memberByExternalKey(domain), fields: claimedFields });
      await lock.assertHeld();
      await store.atomic(ops);
      return { users: result, changed, resumed };
    } finally {
      await lock.release();
    }
  }

  /**
   * A page of members with their keys. Cursor: the SSCAN cursor of the page being read, plus the last
   * member returned from it when the page was cut (members of a page are returned in id order), so a
   * page is never larger than `count` and nothing of a cut page is skipped. Filtering reads at most
   * LIST_MAX_EXAMINED members per request: a page may then be short with a non-null `nextCursor`.
   * Like SSCAN, a member added or removed during the iteration may be missed or repeated.
   */
  async list(tenant: Tenant, options: { count: number; cursor?: string; hasExternalKey?: boolean }): Promise<{ users: ExternalKeyListItem[]; nextCursor: string | null; resumed: ResumedImport | null }> {
    const resumed = await this.finishPendingImport(tenant.domain);
    const { store, members } = this.deps;
    const domain = tenant.domain;
    let { scan, after } = decodeListCursor(options.cursor, store.kind);
    const users: ExternalKeyListItem[] = [];
    let examined = 0;
    for (;;) {
      const [next, ids] = await store.sScan(keys.memberIds(domain), scan, LIST_SCAN_COUNT);
      const page = [...new Set(ids)].sort().filter((id) => after === null || id > after);
      const found = await Promise.all(page.map((id) => members.findById(domain, id)));
      const matching = found.filter((m): m is Member => m !== null && (options.hasExternalKey === undefined || Boolean(m.externalKey) === options.hasExternalKey));
      const room = options.count - users.length;
      if (matching.length > room) {
        users.push(...matching.slice(0, room).map(listItem));
        return { users, nextCursor: encodeListCursor(scan, users[users.length - 1]!.id), resumed };
      }
      users.push(...matching.map(listItem));
      examined += page.length;
      if (next === '0') return { users, nextCursor: null, resumed };
      scan = next;
      after = null;
      if (users.length === options.count || examined >= LIST_MAX_EXAMINED) return { users, nextCursor: encodeListCursor(scan, null), resumed };
    }
  }

  // ---------------------------------------------------------------- S-28 CSV

  /**
   * Streams `account,name,externalKey` (with a header row) to `write`, a page of members at a time;
   * `write` resolves when the consumer wants more. Rows are CRLF-terminated (RFC 4180). The caller
   * writes the UTF-8 BOM. SSCAN may return a member twice: a set of ids seen (ids only) drops repeats.
   */
  async exportCsv(tenant: Tenant, write: (chunk: string) => Promise<void>): Promise<number> {
    const { store, members } = this.deps;
    const domain = tenant.domain;
    await write(`${CSV_HEADER}\r\n`);
    const seen = new Set<string>();
    let cursor = '0';
    let rows = 0;
    do {
      const [next, ids] = await store.sScan(keys.memberIds(domain), cursor, EXPORT_SCAN_COUNT);
      cursor = next;
      const fresh = ids.filter((id) => !seen.has(id));
      for (const id of fresh) seen.add(id);
      const found = await Promise.all(fresh.map((id) => members.findById(domain, id)));
      let chunk = '';
      for (const m of found) {
        if (!m) continue;
        chunk += `${csvCell(m.account)},${csvCell(m.name)},${csvCell(m.externalKey ?? '')}\r\n`;
        rows++;
      }
      if (chunk) await write(chunk);
    } while (cursor !== '0');
    return rows;
  }

  /**
   * Whether a change touches a super admin (the member whose key changes, or the one a key is taken
   * from): read in batches, so a 100,000-row file costs 100 pipelined reads, never all at once.
   */
  private async refuseSuperAdminChanges(domain: string, changes: string[]): Promise<void> {
    const ids = new Set<string>();
    for (const change of changes) {
      const [id, holder] = change.split('\t');
      if (id) ids.add(id);
      if (holder) ids.add(holder);
    }
    const all = [...ids];
    for (let i = 0; i < all.length; i += 1000) {
      const records = await this.deps.store.mGet(all.slice(i, i + 1000).map((id) => keys.member(domain, id)));
      if (records.some((r) => r !== null && (JSON.parse(r) as Member).role === 'super_admin')) throw superAdminRefusal();
    }
  }

  /**
   * S-28 import: validates the whole stream first (400 `csv_invalid` with every row error, nothing
   * written), then stages and applies the plan (see the file comment). Members not in the file keep
   * their keys; an empty externalKey removes a member's key.
   */
  async importCsv(tenant: Tenant, input: Readable, options: KeyChangeOptions = {}): Promise<ImportResult> {
    const { store } = this.deps;
    const domain = tenant.domain;
    let lock: TenantLock | null = null;
    try {
      lock = await TenantLock.acquire(store, domain);
      const resumed = await this.finishPendingLocked(domain, lock);
      const plan = await this.validate(tenant, input);
      if (options.allowSuperAdmin === false) await this.refuseSuperAdminChanges(domain, plan.changes);
      if (plan.changes.length === 0) return { ...plan.counts, jobId: null, resumed };
      const job = await this.stage(domain, plan, lock);
      plan.changes.length = 0;
      await this.applyJob(domain, job, lock);
      return { ...plan.counts, jobId: job.id, resumed };
    } finally {
      // Whatever happened, the request body is consumed (discarded) so the answer reaches the client.
      if (!input.readableEnded && !input.destroyed) input.resume();
      await lock?.release();
    }
  }

  /** Finishes an import an earlier request left behind (if any): GET of the CSV and listings call it. */
  async finishPendingImport(domain: string): Promise<ResumedImport | null> {
    const { store } = this.deps;
    if ((await store.get(keys.externalKeyImportJob(domain))) === null) return null;
    const lock = await TenantLock.acquire(store, domain);
    try {
      return await this.finishPendingLocked(domain, lock);
    } finally {
      await lock.release();
    }
  }

  private async finishPendingLocked(domain: string, lock: TenantLock): Promise<ResumedImport | null> {
    const { store } = this.deps;
    const raw = await store.get(keys.externalKeyImportJob(domain));
    if (raw === null) return null;
    const job = JSON.parse(raw) as ImportJob;
    if (job.state === 'staging') {
      // Never committed (its request never succeeded): discard it.
      const staged: string[] = [];
      for (let n = 0; n <= job.staged; n++) staged.push(keys.externalKeyImportBatch(domain, job.id, n));
      await store.atomic([...staged.map((key) => ({ op: 'del' as const, key })), { op: 'del', key: keys.externalKeyImportJob(domain) }]);
      return null;
    }
    await this.applyJob(domain, job, lock);
    return { jobId: job.id, counts: job.counts, startedAt: new Date(job.startedAt).toISOString() };
  }

  private async validate(tenant: Tenant, input: Readable): Promise<ImportPlan> {
    const v = new CsvValidation(this.deps.store, tenant, this.maxRows, this.maxErrors);
    await readCsv(input, { maxBytes: this.maxBytes, errors: v.collector }, (fields, row) => v.record(fields, row));
    return v.finish();
  }

  /** Writes the plan as batch hashes under a job record; the job flips to `applying` last (commit). */
  private async stage(domain: string, plan: ImportPlan, lock: TenantLock): Promise<ImportJob> {
    const { store } = this.deps;
    const batches = Math.ceil(plan.changes.length / this.batchSize);
    let job: ImportJob = { id: randomBytes(8).toString('hex'), state: 'staging', batches, staged: 0, next: 0, counts: plan.counts, startedAt: this.deps.clock.now() };
    await store.set(keys.externalKeyImportJob(domain), JSON.stringify(job));
    for (let n = 0; n < batches; n++) {
      const fields: Record<string, string> = {};
      for (let i = n * this.batchSize; i < Math.min(plan.changes.length, (n + 1) * this.batchSize); i++) {
        const change = plan.changes[i]!;
        const tab = change.indexOf('\t');
        fields[change.slice(0, tab)] = change.slice(tab + 1);
      }
      job = { ...job, staged: n + 1 };
      await store.atomic([
        { op: 'hSet', key: keys.externalKeyImportBatch(domain, job.id, n), fields },
        { op: 'set', key: keys.externalKeyImportJob(domain), value: JSON.stringify(job) },
      ]);
    }
    await lock.assertHeld();
    job = { ...job, state: 'applying' };
    await store.set(keys.externalKeyImportJob(domain), JSON.stringify(job));
    return job;
  }

  /**
   * Applies the committed job from its next batch. Each batch is one MULTI: the members, their index
   * entries, the batch's deletion and the job's progress — applied exactly once, even if resumed.
   *
   * A key the batch gives out may have been taken since the file was validated by a member outside the
   * plan (a single-member PATCH is not held off by the lock, and an interrupted import waits for the
   * next external-key request): the import wins, and that member loses the key in the same MULTI —
   * so no two members ever hold one key.
   */
  private async applyJob(domain: string, start: ImportJob, lock: TenantLock): Promise<void> {
    const { store } = this.deps;
    const index = keys.memberByExternalKey(domain);
    let job = start;
    while (job.next < job.batches) {
      const batchKey = keys.externalKeyImportBatch(domain, job.id, job.next);
      const planned = Object.entries(await store.hGetAll(batchKey)).map(([id, value]) => {
        const parts = value.split('\t');
        // (`release\tkey` is the layout of jobs staged before the holder was recorded)
        return parts.length === 2 ? { id, release: parts[0] === '1', holder: '', key: parts[1]! } : { id, release: parts[0] === '1', holder: parts[1]!, key: parts[2]! };
      });
      const inBatch = new Set(planned.map((p) => p.id));
      const records = await Promise.all(planned.map((p) => store.get(keys.member(domain, p.id))));
      const members = records.map((r) => (r === null ? null : (JSON.parse(r) as Member)));
      // The member's current key leaves the index only if the entry still points at the member.
      const releasing = members.map((m, i) => (m?.externalKey && m.externalKey !== planned[i]!.key && planned[i]!.release ? m.externalKey : null));
      const [holders, claimHolders] = await Promise.all([
        Promise.all(releasing.map((old) => (old === null ? NONE : store.hGet(index, old)))),
        Promise.all(planned.map((p) => (p.key ? store.hGet(index, p.key) : NONE))),
      ]);
      // Who holds a key this batch claims, and is neither the claimant, nor the file's member it comes
      // from, nor changed by this batch anyway: a member that took the key after validation.
      const intruderIds = planned.map((p, i) => {
        const h = claimHolders[i];
        return h && h !== p.id && h !== p.holder && !inBatch.has(h) ? h : null;
      });
      const intruders = await Promise.all(intruderIds.map((h) => (h === null ? NONE : store.get(keys.member(domain, h)))));
      const ops: AtomicOp[] = [];
      const claimed: Record<string, string> = {};
      const released: string[] = [];
      planned.forEach((p, i) => {
        const member = members[i];
        if (!member) return; // deleted since validation
        const next = withExternalKey(member, p.key || null);
        ops.push({ op: 'set', key: keys.member(domain, p.id), value: JSON.stringify(next) }, ...memberIndexOps(domain, member, next));
        if (p.key) claimed[p.key] = p.id;
        const old = releasing[i];
        if (old && holders[i] === p.id) released.push(old);
        const intruder = intruders[i] ? (JSON.parse(intruders[i]) as Member) : null;
        if (intruder?.externalKey === p.key) {
          const freed = withExternalKey(intruder, null);
          ops.push({ op: 'set', key: keys.member(domain, intruder.id), value: JSON.stringify(freed) }, ...memberIndexOps(domain, intruder, freed));
        }
      });
      job = { ...job, next: job.next + 1 };
      ops.push(
        // (a key this batch hands to another member is overwritten, not removed)
        { op: 'hDel', key: keys.memberByExternalKey(domain), fields: released.filter((old) => claimed[old] === undefined) },
        { op: 'hSet', key: keys.memberByExternalKey(domain), fields: claimed },
        { op: 'del', key: batchKey },
        job.next < job.batches ? { op: 'set', key: keys.externalKeyImportJob(domain), value: JSON.stringify(job) } : { op: 'del', key: keys.externalKeyImportJob(domain) },
      );
      await lock.assertHeld();
      await store.atomic(ops);
      await this.deps.afterApplyBatch?.(domain, job.next - 1);
    }
    // A job whose last batch was applied is gone with that batch; this only clears an empty one.
    if (start.next >= start.batches) await store.del(keys.externalKeyImportJob(domain));
  }
}

function withExternalKey(member: Member, key: string | null): Member {
  const { externalKey: _old, ...rest } = member;
  return key === null ? rest : { ...rest, externalKey: key };
}

function listItem(m: Member): ExternalKeyListItem {
  return { id: m.id, account: m.account, name: m.name, externalKey: m.externalKey ?? null };
}

function encodeListCursor(scan: string, after: string | null): string {
  return Buffer.from(after === null ? scan : `${scan}\n${after}`, 'utf8').toString('base64url');
}

function decodeListCursor(cursor: string | undefined, storeKind: KeyValueStore['kind']): { scan: string; after: string | null } {
  if (cursor === undefined || cursor === '0') return { scan: '0', after: null };
  const raw = /^[A-Za-z0-9_-]{1,400}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  const [scan, after, extra] = raw.split('\n');
  // Redis SSCAN cursors are unsigned 64-bit numbers (19 digits stay below 2^64); the memory store's are base64url.
  const scanRe = storeKind === 'redis' ? /^\d{1,19}$/ : /^[A-Za-z0-9_-]{1,300}$/;
  if (!scan || !scanRe.test(scan) || extra !== undefined || (after !== undefined && !MEMBER_ID_RE.test(after))) {
    throw new AppError('validation_failed', { details: [{ path: 'cursor', message: 'not a cursor this API returned' }] });
  }
  return { scan, after: after ?? null };
}
