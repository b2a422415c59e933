import { externalKeySchema, type Member } from '../domain/member.js';
import type { Tenant } from '../domain/tenant.js';
import { keys, type KeyValueStore } from '../store/index.js';
import { CsvErrors, uncsvCell, type CsvRowError } from './csv.js';
import type { ImportCounts } from './external-keys.js';

/* Validation of an external-keys CSV upload (S-28, step 1 of the import in external-keys.ts): the plan, nothing written. */

/** Rows resolved against the store together (their commands share pipelined round trips). */
const LOOKUP_BATCH = 500;
const NONE: Promise<null> = Promise.resolve(null);

/** S-24: a tenant whose SSO matches members by external key needs one on every member. */
export function keysRequired(tenant: Tenant): boolean {
  return tenant.sso.enabled && tenant.sso.userKey === 'externalKey';
}

/** What validating a CSV produced: the changes (compact) and the counts. */
export interface ImportPlan {
  /**
   * One `${memberId}\t${release ? 1 : 0}\t${holder}\t${newKey}` per changed member (ids and keys hold
   * no tab); `holder` is the member of the file who held `newKey` when the file was validated (a swap
   * or a move), else empty.
   */
  changes: string[];
  counts: ImportCounts;
}

interface RawRow {
  row: number;
  account: string;
  key: string;
}

/**
 * Validates an uploaded CSV as a stream, LOOKUP_BATCH rows at a time. Per row it asks the store two
 * things in one pipelined round trip — the account's member id and the holder of the new key — and,
 * only for rows emptying a key, the member record. It keeps, per data row: an entry in `fileMembers`
 * and `fileKeys` (duplicates, clashes), a short string when the row changes something, and a clash
 * candidate when its key is held by another member (about 250 bytes a row in all, measured).
 */
export class CsvValidation {
  readonly collector: CsvErrors;
  private readonly fileMembers = new Map<string, number>();
  private readonly fileKeys = new Map<string, number>();
  /** Rows whose key another member holds now: a clash unless that member is in the file too. */
  private readonly clashes: Array<{ row: number; holder: string }> = [];
  /** `${memberId}\t${holder of newKey, or ''}\t${newKey}` per changed member. */
  private readonly changes: string[] = [];
  private readonly counts: ImportCounts = { updated: 0, removed: 0, unchanged: 0 };
  private columns: { account: number; externalKey: number; width: number } | null = null;
  private pending: RawRow[] = [];
  private dataRows = 0;

  constructor(
    private readonly store: KeyValueStore,
    private readonly tenant: Tenant,
    private readonly maxRows: number,
    private readonly maxErrors: number,
  ) {
    this.collector = new CsvErrors(maxErrors);
  }

  private error(row: number, column: 'account' | 'externalKey' | null, error: string): void {
    this.collector.add(row, column, error);
  }

  private get errors(): readonly CsvRowError[] {
    return this.collector.errors;
  }

  /** Set when reading must stop (header unusable, too many rows, error cap reached). */
  get stopped(): boolean {
    return this.collector.stopped;
  }

  /** A record of the file; `row` is the line it starts on. Blank lines never reach here. */
  async record(fields: string[], row: number): Promise<void> {
    if (this.columns === null) {
      this.header(fields, row);
      return;
    }
    if (++this.dataRows > this.maxRows) {
      this.error(row, null, `the file has more than ${this.maxRows} rows`);
      this.collector.stop();
      return;
    }
    if (fields.length !== this.columns.width) {
      this.error(row, null, `the row has ${fields.length} fields, the header has ${this.columns.width} (quote fields that contain commas)`);
      return;
    }
    this.pending.push({ row, account: fields[this.columns.account]!, key: fields[this.columns.externalKey]! });
    if (this.pending.length >= LOOKUP_BATCH) await this.flush();
  }

  private header(fields: string[], row: number): void {
    const names = fields.map((f) => f.trim().toLowerCase());
    for (const name of ['account', 'name', 'externalkey']) {
      if (names.indexOf(name) !== names.lastIndexOf(name)) this.error(row, null, `the header names the column ${name} twice`);
    }
    const account = names.indexOf('account');
    const externalKey = names.indexOf('externalkey');
    if (account < 0) this.error(row, 'account', 'the header row must name the columns account, name, externalKey (the column account is missing)');
    if (externalKey < 0) this.error(row, 'externalKey', 'the header row must name the columns account, name, externalKey (the column externalKey is missing)');
    if (this.errors.length > 0) {
      this.collector.stop();
      return;
    }
    this.columns = { account, externalKey, width: fields.length };
  }

  /** Resolves the pending rows against the store (pipelined), then checks them in file order. */
  async flush(): Promise<void> {
    const rows = this.pending;
    this.pending = [];
    if (rows.length === 0) return;
    const { store } = this;
    const domain = this.tenant.domain;
    const accounts = rows.map((r) => uncsvCell(r.account.trim()).toLowerCase());
    const newKeys = rows.map((r) => uncsvCell(r.key));
    const [ids, holders] = await Promise.all([
      Promise.all(accounts.map((a) => (a === '' ? NONE : store.hGet(keys.memberByAccount(domain), a)))),
      Promise.all(newKeys.map((k) => (k === '' || k.length > 100 ? NONE : store.hGet(keys.memberByExternalKey(domain), k)))),
    ]);
    // The current key matters only where the row empties it (removed or unchanged? SSO rule?).
    const emptying = await Promise.all(ids.map((id, i) => (id !== null && newKeys[i] === '' ? store.get(keys.member(domain, id)) : NONE)));
    for (let i = 0; i < rows.length && !this.stopped; i++) {
      const record = emptying[i];
      const current = record ? ((JSON.parse(record) as Member).externalKey ?? '') : '';
      this.check(rows[i]!.row, accounts[i]!, newKeys[i]!, ids[i] ?? null, holders[i] ?? null, current);
    }
  }

  private check(row: number, account: string, key: string, memberId: string | null, holder: string | null, currentIfEmptying: string): void {
    let id: string | null = null;
    if (account === '') this.error(row, 'account', 'the account is empty');
    else if (memberId === null) this.error(row, 'account', 'no member with this account');
    else {
      const first = this.fileMembers.get(memberId);
      if (first !== undefined) this.error(row, 'account', `the account is also on row ${first}`);
      else {
        this.fileMembers.set(memberId, row);
        id = memberId;
      }
    }

    let keyOk = true;
    if (key !== '') {
      const parsed = externalKeySchema.safeParse(key);
      if (!parsed.success) {
        keyOk = false;
        this.error(row, 'externalKey', key.length > 100 ? 'the external key is longer than 100 characters' : 'the external key must not contain % \\ # / ? or control characters');
      } else {
        const first = this.fileKeys.get(key);
        if (first !== undefined) {
          keyOk = false;
          this.error(row, 'externalKey', `the external key is also on row ${first}`);
        } else this.fileKeys.set(key, row);
      }
    }
    if (id === null || !keyOk) return;

    if (key === '') {
      if (currentIfEmptying === '') {
        this.counts.unchanged++;
        return;
      }
      if (keysRequired(this.tenant)) {
        this.error(row, 'externalKey', 'an external key is required while single sign-on matches members by external key');
        return;
      }
      this.counts.removed++;
    } else {
      // The index says who holds the key now: this member (unchanged), nobody, or another member.
      if (holder === id) {
        this.counts.unchanged++;
        return;
      }
      if (holder !== null) this.clashes.push({ row, holder });
      this.counts.updated++;
    }
    if (this.errors.length === 0) this.changes.push(`${id}\t${holder !== null && holder !== id ? holder : ''}\t${key}`);
  }

  /** After the last row: clashes with members outside the file, then the plan (or the errors). */
  async finish(): Promise<ImportPlan> {
    await this.flush();
    if (this.columns === null && this.errors.length === 0) this.error(1, null, 'the file is empty: the header row account,name,externalKey is required');
    const outside = this.clashes.filter((c) => !this.fileMembers.has(c.holder));
    const holderRecords = await Promise.all(outside.slice(0, this.maxErrors).map((c) => this.store.get(keys.member(this.tenant.domain, c.holder))));
    outside.forEach((c, i) => {
      const record = holderRecords[i];
      const account = record ? (JSON.parse(record) as Member).account : null;
      this.error(c.row, 'externalKey', `the external key is already used by ${account ?? 'another member'}, who is not given another key in this file`);
    });
    this.collector.throwIfAny();
    // A member whose current key another row of the file takes over (a swap, a move) must not
    // remove it from the index when applied: the taker overwrites the entry instead, so the key
    // never points nowhere in between.
    const keepsIndexEntry = new Set(this.clashes.map((c) => c.holder));
    const changes = this.changes.map((c) => {
      const tab = c.indexOf('\t');
      return `${c.slice(0, tab)}\t${keepsIndexEntry.has(c.slice(0, tab)) ? 0 : 1}${c.slice(tab)}`;
    });
    this.changes.length = 0;
    return { changes, counts: this.counts };
  }
}
