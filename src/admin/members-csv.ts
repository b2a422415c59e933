import { randomBytes, randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Clock } from '../domain/clock.js';
import { accountSchema, externalKeySchema, memberRoleSchema, memberSchema, type Member } from '../domain/member.js';
import { memberIndexOps } from '../domain/member-index.js';
import type { MemberRepository } from '../domain/members.js';
import type { Tenant } from '../domain/tenant.js';
import { AppError } from '../errors/index.js';
import { keys, type AtomicOp, type KeyValueStore } from '../store/index.js';
import { CsvErrors, readCsv, uncsvCell } from './csv.js';
import { TenantLock } from './external-keys.js';

/*
 * Members added in bulk from a CSV file (`POST …/members.csv`): header `account,name,externalKey,role`
 * (externalKey and role columns optional, any order), UTF-8, a BOM allowed, cells un-escaped like the
 * external-key CSV's (a leading `'` before a formula character is dropped).
 *
 * 1. The whole file is validated as a stream, LOOKUP_BATCH rows at a time (the account and external-key
 *    indexes asked in one pipelined round trip per batch): nothing is written if any row is wrong, and
 *    400 `csv_invalid` lists every `{row, column, error}` (capped, `truncated`).
 * 2. Then the members are written WRITE_BATCH at a time, each batch one MULTI on the tenant's slot
 *    (records, id set, unique indexes, search indexes). Before each batch its accounts and keys are
 *    checked again; if a single-member request took one in between, the batches already written are
 *    deleted again and the request answers 409 `conflict`: the file is applied whole or not at all.
 * The request holds the tenant's external-keys lock (TenantLock: external keys change in bulk one
 * request at a time; a TTL of 30 s, renewed every 10 s while its process lives).
 *
 * Crash safety, by rolling back (an interrupted import never completes later: its file was never
 * acknowledged, and the validated rows are not kept anywhere but in the dead process):
 *   - before the first batch, a job record {id, startedAt, lock holder, batches written} is put in the
 *     tenant's job hash (`membersImportJobs`);
 *   - each batch's MULTI also adds its member ids to the job's set (`membersImportJobMembers`) and
 *     rewrites the job record: a member of an unfinished import never exists without a job naming it;
 *   - after the last batch one MULTI deletes the job and its set: from then on the file is applied whole;
 *   - a job found by a request that holds the tenant's lock is abandoned (its process would hold the
 *     lock; the lock outlives a dead process by at most its TTL). The next members.csv request and the
 *     next GET …/members (which first takes the lock if it is free; if not, a live import or other bulk
 *     change runs, and it lists as it is) delete its members through MemberRepository.deleteMany — the
 *     path of a single delete, so every index loses them — a page of its set at a time, then the job,
 *     and audit `members.import_rolled_back` with the count. A rollback cut short is finished by the next.
 *   - a request whose lock expired while it stalled (alive, but past the TTL) stops at its next lock check;
 *     a batch it wrote after its job was rolled back re-creates the job record in the same MULTI, so that
 *     batch is rolled back too.
 * A crash before the job record leaves nothing; between batches, or after the last batch but before the
 * job is deleted, a job that the next request rolls back (the tenant ends with none of the file's
 * members); after the job is deleted, the whole file (the answer may be lost: uploading it again then
 * reports every row as an existing account). Every key of the import is in the tenant's slot.
 * Memory: one compact string per row plus the file's accounts and keys (duplicates): about 200 bytes a row.
 */

const LOOKUP_BATCH = 500;
const WRITE_BATCH = 500;
/** Members of an interrupted import deleted per MULTI when it is rolled back. */
const ROLLBACK_BATCH = 500;
const NONE: Promise<null> = Promise.resolve(null);
const CONTROL_RE = /[\u0000-\u001f\u007f]/;
const COLUMNS = ['account', 'name', 'externalkey', 'role'] as const;
/** Column names as the file should spell them (for messages and row errors). */
const COLUMN_NAMES: Record<(typeof COLUMNS)[number], string> = { account: 'account', name: 'name', externalkey: 'externalKey', role: 'role' };
export const MEMBERS_CSV_HEADER = 'account,name,externalKey,role';

export interface MembersCsvDeps {
  store: KeyValueStore;
  members: MemberRepository;
  clock: Clock;
  /** Data rows a file may hold. */
  maxRows?: number;
  /** Row errors reported at most. */
  maxErrors?: number;
  /** Bytes a file may have. */
  maxBytes?: number;
  /** Test seam: runs after each batch written (a test makes a clash appear here, or the process "die"). */
  afterWriteBatch?: (domain: string, batch: number) => Promise<void>;
}

export interface MembersCsvOptions {
  /** The caller may give the super_admin role (else such a row is an error). */
  allowSuperAdmin: boolean;
  /** Called for each interrupted import rolled back before this one starts (to audit it). */
  onRolledBack?: OnRolledBack;
}

interface PendingRow {
  row: number;
  account: string;
  name: string;
  key: string;
  role: string;
}

/** `${account}\0${name}\0${key}\0${role}` (validated: none holds a NUL). */
type PlannedRow = string;

class MembersCsvValidation {
  readonly errors: CsvErrors;
  readonly planned: PlannedRow[] = [];
  private columns: Partial<Record<(typeof COLUMNS)[number], number>> | null = null;
  private width = 0;
  private dataRows = 0;
  private pending: PendingRow[] = [];
  private readonly fileAccounts = new Map<string, number>();
  private readonly fileKeys = new Map<string, number>();
  /** S-25: while SSO is on, a new member must come with an external key. */
  private readonly keyRequired: boolean;

  constructor(
    private readonly store: KeyValueStore,
    private readonly tenant: Tenant,
    private readonly maxRows: number,
    maxErrors: number,
    private readonly options: MembersCsvOptions,
  ) {
    this.errors = new CsvErrors(maxErrors);
    this.keyRequired = tenant.sso.enabled;
  }

  async record(fields: string[], row: number): Promise<void> {
    if (this.columns === null) {
      this.header(fields, row);
      return;
    }
    if (++this.dataRows > this.maxRows) {
      this.errors.add(row, null, `the file has more than ${this.maxRows} rows`);
      this.errors.stop();
      return;
    }
    if (fields.length !== this.width) {
      this.errors.add(row, null, `the row has ${fields.length} fields, the header has ${this.width} (quote fields that contain commas)`);
      return;
    }
    const cell = (c: (typeof COLUMNS)[number]): string => {
      const at = this.columns![c];
      return at === undefined ? '' : fields[at]!;
    };
    this.pending.push({
      row,
      account: uncsvCell(cell('account').trim()),
      name: uncsvCell(cell('name').trim()),
      key: uncsvCell(cell('externalkey')),
      role: uncsvCell(cell('role').trim()),
    });
    if (this.pending.length >= LOOKUP_BATCH) await this.flush();
  }

  private header(fields: string[], row: number): void {
    const names = fields.map((f) => f.trim().toLowerCase());
    const columns: Partial<Record<(typeof COLUMNS)[number], number>> = {};
    names.forEach((name, i) => {
      const known = COLUMNS.find((c) => c === name);
      if (!known) this.errors.add(row, null, `the header names an unknown column "${fields[i]!.trim().slice(0, 50)}" (the columns are ${MEMBERS_CSV_HEADER})`);
      else if (columns[known] !== undefined) this.errors.add(row, COLUMN_NAMES[known], `the header names the column ${COLUMN_NAMES[known]} twice`);
      else columns[known] = i;
    });
    for (const required of ['account', 'name'] as const) {
      if (columns[required] === undefined) this.errors.add(row, required, `the header row must name the columns ${MEMBERS_CSV_HEADER} (the column ${required} is missing)`);
    }
    if (this.errors.errors.length > 0) {
      this.errors.stop();
      return;
    }
    this.columns = columns;
    this.width = fields.length;
  }

  /** Resolves the pending rows against the store (pipelined), then checks them in file order. */
  async flush(): Promise<void> {
    const rows = this.pending;
    this.pending = [];
    if (rows.length === 0) return;
    const domain = this.tenant.domain;
    const accounts = rows.map((r) => accountSchema.safeParse(r.account));
    const [accountHolders, keyHolders] = await Promise.all([
      Promise.all(accounts.map((a) => (a.success ? this.store.hGet(keys.memberByAccount(domain), a.data) : NONE))),
      Promise.all(rows.map((r) => (r.key === '' || r.key.length > 100 ? NONE : this.store.hGet(keys.memberByExternalKey(domain), r.key)))),
    ]);
    for (let i = 0; i < rows.length && !this.errors.stopped; i++) {
      const parsed = accounts[i]!;
      this.check(rows[i]!, parsed.success ? parsed.data : null, accountHolders[i] ?? null, keyHolders[i] ?? null);
    }
  }

  private check(r: PendingRow, account: string | null, accountHolder: string | null, keyHolder: string | null): void {
    const { row } = r;
    if (r.account === '') this.errors.add(row, 'account', 'the account is empty');
    else if (account === null) this.errors.add(row, 'account', 'the account must look like user@example.com (at most 254 characters, no spaces)');
    else {
      const first = this.fileAccounts.get(account);
      if (first !== undefined) this.errors.add(row, 'account', `the account is also on row ${first}`);
      else {
        this.fileAccounts.set(account, row);
        if (accountHolder !== null) this.errors.add(row, 'account', 'a member with this account already exists');
      }
    }

    if (r.name === '') this.errors.add(row, 'name', 'the name is empty');
    else if (r.name.length > 200) this.errors.add(row, 'name', 'the name is longer than 200 characters');
    else if (CONTROL_RE.test(r.name)) this.errors.add(row, 'name', 'the name must not contain control characters');

    if (r.key === '') {
      if (this.keyRequired) this.errors.add(row, 'externalKey', 'an external key is required while single sign-on is on');
    } else if (!externalKeySchema.safeParse(r.key).success) {
      this.errors.add(row, 'externalKey', r.key.length > 100 ? 'the external key is longer than 100 characters' : 'the external key must not contain % \\ # / ? or control characters');
    } else {
      const first = this.fileKeys.get(r.key);
      if (first !== undefined) this.errors.add(row, 'externalKey', `the external key is also on row ${first}`);
      else {
        this.fileKeys.set(r.key, row);
        if (keyHolder !== null) this.errors.add(row, 'externalKey', 'the external key is already used by another member');
      }
    }

    const role = r.role === '' ? 'member' : r.role.toLowerCase();
    if (!memberRoleSchema.safeParse(role).success) this.errors.add(row, 'role', 'the role must be member, admin or super_admin (empty: member)');
    else if (role === 'super_admin' && !this.options.allowSuperAdmin) this.errors.add(row, 'role', 'only a super admin may give the super_admin role');

    // Once the file is known to be wrong, nothing more is kept for writing.
    if (this.errors.errors.length === 0) this.planned.push(`${account}\0${r.name}\0${r.key}\0${role}`);
  }

  async finish(): Promise<PlannedRow[]> {
    await this.flush();
    if (this.columns === null && this.errors.errors.length === 0) this.errors.add(1, null, `the file is empty: the header row ${MEMBERS_CSV_HEADER} is required`);
    this.errors.throwIfAny();
    return this.planned;
  }
}

/** A members CSV import being written (`keys.membersImportJobs`): what a later request needs to undo it. */
interface ImportJob {
  id: string;
  startedAt: number;
  /** The tenant-lock value of the request running it (diagnosis: which request it was). */
  lock: string;
  /** Batches written so far. */
  written: number;
}

/** An interrupted import this request rolled back (for the audit trail). */
export interface RolledBackImport {
  jobId: string;
  startedAt: string;
  /** Members deleted again. */
  count: number;
}

/** Audits a rolled-back import (the route records `members.import_rolled_back`). */
export type OnRolledBack = (rolledBack: RolledBackImport) => Promise<void>;

export class MembersCsvImport {
  private readonly maxRows: number;
  private readonly maxErrors: number;
  private readonly maxBytes: number;

  constructor(private readonly deps: MembersCsvDeps) {
    this.maxRows = deps.maxRows ?? 100_000;
    this.maxErrors = deps.maxErrors ?? 1000;
    this.maxBytes = deps.maxBytes ?? 64 * 1024 * 1024;
  }

  async importCsv(tenant: Tenant, input: Readable, options: MembersCsvOptions): Promise<{ created: number }> {
    const { store } = this.deps;
    let lock: TenantLock | null = null;
    try {
      lock = await TenantLock.acquire(store, tenant.domain);
      // Before anything else: the accounts of an interrupted import must not count as existing.
      await this.rollBackAbandonedLocked(tenant.domain, lock, options.onRolledBack);
      const v = new MembersCsvValidation(store, tenant, this.maxRows, this.maxErrors, options);
      await readCsv(input, { maxBytes: this.maxBytes, errors: v.errors }, (fields, row) => v.record(fields, row));
      const planned = await v.finish();
      await this.write(tenant, planned, lock);
      return { created: planned.length };
    } finally {
      // Whatever happened, the request body is consumed (discarded) so the answer reaches the client.
      if (!input.readableEnded && !input.destroyed) input.resume();
      await lock?.release();
    }
  }

  /**
   * Rolls back the imports a dead process left (GET …/members calls it before listing). Costs one HLEN
   * when there are none. While the tenant's lock is held — a live import, or another bulk change of
   * external keys — it does nothing: the holder is alive, and the next request after it does the work.
   */
  async rollBackAbandoned(domain: string, onRolledBack?: OnRolledBack): Promise<void> {
    const { store } = this.deps;
    if ((await store.hLen(keys.membersImportJobs(domain))) === 0) return;
    let lock: TenantLock;
    try {
      lock = await TenantLock.acquire(store, domain);
    } catch (err) {
      if (err instanceof AppError && err.code === 'conflict') return;
      throw err;
    }
    try {
      await this.rollBackAbandonedLocked(domain, lock, onRolledBack);
    } finally {
      await lock.release();
    }
  }

  /**
   * Under the tenant's lock, every import job in the store is abandoned: an import runs only while its
   * request holds the lock, and the lock (a TTL, renewed while its process lives) is now ours.
   */
  private async rollBackAbandonedLocked(domain: string, lock: TenantLock, onRolledBack?: OnRolledBack): Promise<void> {
    const jobs = Object.values(await this.deps.store.hGetAll(keys.membersImportJobs(domain))).map((raw) => JSON.parse(raw) as ImportJob);
    for (const job of jobs) {
      const count = await this.rollBack(domain, job, lock);
      await onRolledBack?.({ jobId: job.id, startedAt: new Date(job.startedAt).toISOString(), count });
    }
  }

  /**
   * Writes the validated rows WRITE_BATCH at a time. The job record goes first; each batch's MULTI also
   * adds its member ids to the job's set and rewrites the job record, so no member of an unfinished
   * import exists without a job that names it. The job is deleted once the last batch is written.
   */
  private async write(tenant: Tenant, planned: PlannedRow[], lock: TenantLock): Promise<void> {
    const { store } = this.deps;
    const domain = tenant.domain;
    const now = this.deps.clock.now();
    const jobs = keys.membersImportJobs(domain);
    let job: ImportJob = { id: randomBytes(8).toString('hex'), startedAt: now, lock: lock.holder, written: 0 };
    const jobMembers = keys.membersImportJobMembers(domain, job.id);
    await store.hSet(jobs, { [job.id]: JSON.stringify(job) });
    try {
      for (let start = 0, n = 0; start < planned.length; start += WRITE_BATCH, n++) {
        const batch: Member[] = planned.slice(start, start + WRITE_BATCH).map((p) => {
          const [account, name, key, role] = p.split('\0') as [string, string, string, string];
          // As POST …/members: status pending (an SSO switch-on activates pending members).
          return memberSchema.parse({ id: randomUUID(), domain, account, name, ...(key ? { externalKey: key } : {}), role, status: 'pending', appPasswords: [], createdAt: now });
        });
        const [accountHolders, keyHolders] = await Promise.all([
          Promise.all(batch.map((m) => store.hGet(keys.memberByAccount(domain), m.account))),
          Promise.all(batch.map((m) => (m.externalKey ? store.hGet(keys.memberByExternalKey(domain), m.externalKey) : NONE))),
        ]);
        const taken = batch.findIndex((_, i) => accountHolders[i] !== null || keyHolders[i] !== null);
        if (taken >= 0) {
          throw new AppError('conflict', {
            detail: `members csv: ${batch[taken]!.account} taken while importing`,
            message: 'Another change added a member with an account or external key of this file while it was being imported; nothing was added. Please upload the file again.',
          });
        }
        job = { ...job, written: n + 1 };
        const ops: AtomicOp[] = [
          { op: 'sAdd', key: keys.memberIds(domain), members: batch.map((m) => m.id) },
          { op: 'sAdd', key: jobMembers, members: batch.map((m) => m.id) },
          { op: 'hSet', key: jobs, fields: { [job.id]: JSON.stringify(job) } },
        ];
        const accounts: Record<string, string> = {};
        const externalKeys: Record<string, string> = {};
        for (const m of batch) {
          ops.push({ op: 'set', key: keys.member(domain, m.id), value: JSON.stringify(m) });
          accounts[m.account] = m.id;
          if (m.externalKey) externalKeys[m.externalKey] = m.id;
        }
        // The search indexes of the whole batch, merged into one ZADD per index.
        const added = new Map<string, string[]>();
        for (const op of batch.flatMap((m) => memberIndexOps(domain, null, m))) {
          if (op.op === 'zAdd') added.set(op.key, [...(added.get(op.key) ?? []), ...op.members]);
        }
        ops.push(
          { op: 'hSet', key: keys.memberByAccount(domain), fields: accounts },
          { op: 'hSet', key: keys.memberByExternalKey(domain), fields: externalKeys },
          ...[...added].map(([key, members]) => ({ op: 'zAdd' as const, key, members })),
        );
        await lock.assertHeld();
        await store.atomic(ops);
        await this.deps.afterWriteBatch?.(domain, n);
      }
      // Done: from here the file is applied whole.
      await store.atomic([
        { op: 'hDel', key: jobs, fields: [job.id] },
        { op: 'del', key: jobMembers },
      ]);
    } catch (err) {
      // Undo now; if that fails too (the store is down, the lock lost), the job stays for the next request.
      await this.rollBack(domain, job, lock).catch(() => 0);
      throw err;
    }
  }

  /**
   * Deletes the members an import wrote — through MemberRepository.deleteMany, the path of a single
   * delete, so every index loses them too — a page of its set at a time, then the job. Idempotent: a
   * rollback cut short is finished by the next one. Their index entries still point at them: no one
   * else could take their accounts or keys while they existed. Returns how many members it deleted.
   */
  private async rollBack(domain: string, job: ImportJob, lock: TenantLock): Promise<number> {
    const { store, members } = this.deps;
    const jobMembers = keys.membersImportJobMembers(domain, job.id);
    let count = 0;
    // A pass reads the set to its end (SSCAN: members present throughout are all returned); a second
    // pass is needed only if the set was added to meanwhile (a writer that stalled past its lock's TTL).
    for (let pass = 0; pass < 3 && (pass === 0 || (await store.sCard(jobMembers)) > 0); pass++) {
      let cursor = '0';
      do {
        await lock.assertHeld();
        const [next, ids] = await store.sScan(jobMembers, cursor, ROLLBACK_BATCH);
        cursor = next;
        const page = [...new Set(ids)];
        if (page.length === 0) continue;
        count += await members.deleteMany(domain, page);
        await store.sRem(jobMembers, ...page);
      } while (cursor !== '0');
    }
    if ((await store.sCard(jobMembers)) > 0) throw new AppError('conflict', { detail: `members csv: import ${job.id} still being written while rolled back` });
    await store.atomic([
      { op: 'hDel', key: keys.membersImportJobs(domain), fields: [job.id] },
      { op: 'del', key: jobMembers },
    ]);
    return count;
  }
}
