import type { Clock } from '../domain/clock.js';
import { AppError } from '../errors/index.js';
import { keys, type KeyValueStore, type StreamBound } from '../store/index.js';
import type { Logger } from './logger.js';

/**
 * An audit event: who did what, when, and under which request. Types read `noun.verb_past`
 * (`saml_response.rejected`, `login.succeeded`). Never put a secret in `data`: only ids, reason
 * codes and counts.
 */
export interface AuditEvent {
  type: string;
  domain?: string;
  /** `member:<id>`, `admin:<key id>`, `operator`, `anonymous`, `idp`. */
  actor: string;
  requestId?: string;
  /** Client IP as Express saw it (honours trustProxy). */
  ip?: string;
  /** Machine-readable reason for refusals. */
  reason?: string;
  data?: Record<string, string | number | boolean | null>;
}

export interface AuditRecord extends AuditEvent {
  at: string;
}

/** A stored event with its id: the stream entry id (`<ms>-<seq>`), or `legacy-<n>` for the list kept before the stream. */
export interface StoredAuditRecord extends AuditRecord {
  id: string;
}

/**
 * What to look for. `type` is one type, or a prefix ending in `*` (`login.*`); `member` matches the
 * member as actor or as the subject of an admin change (`data.memberId`); `result` `failure` is an
 * event that carries a refusal reason, `success` one that does not; `from` / `to` are ms, inclusive.
 */
export interface AuditFilter {
  type?: string;
  actor?: string;
  member?: string;
  result?: 'success' | 'failure';
  from?: number;
  to?: number;
}

export interface AuditPage {
  events: StoredAuditRecord[];
  /** Where the next page starts; null when the walk reached the trail's oldest event. */
  nextCursor: string | null;
}

/** Entries read per store call while walking. */
const WALK_BATCH = 500;
/** At most this many events are read (and tested against the filter) for one page: a page may be short, with a nextCursor. */
export const AUDIT_PAGE_BUDGET = 5_000;
const DAY_MS = 24 * 3600_000;
const STREAM_ID_RE = /^\d{1,16}-\d{1,16}$/;
const LEGACY_ID_RE = /^legacy-(\d{1,9})$/;

/** Where a walk stands: in the stream, strictly older than `before` (null: from the newest); or in the old list, at `index`. */
type Position = { in: 'stream'; before: string | null } | { in: 'list'; index: number };

function encodeCursor(p: Position): string {
  return p.in === 'stream' ? `s.${p.before ?? ''}` : `l.${p.index}`;
}

function decodeCursor(cursor: string | undefined): Position {
  if (!cursor) return { in: 'stream', before: null };
  const m = /^(?:s\.(\d{1,16}-\d{1,16})|l\.(\d{1,9}))$/.exec(cursor);
  if (!m) throw new AppError('validation_failed', { details: [{ path: 'cursor', message: 'is not a cursor of this list' }], detail: 'bad audit cursor' });
  return m[1] ? { in: 'stream', before: m[1] } : { in: 'list', index: Number(m[2]) };
}

/** Whether a record passes the filter (its time included). */
export function matchesAudit(r: AuditRecord, f: AuditFilter): boolean {
  if (f.type) {
    if (f.type.endsWith('*') ? !r.type.startsWith(f.type.slice(0, -1)) : r.type !== f.type) return false;
  }
  if (f.actor && r.actor !== f.actor) return false;
  if (f.member && r.actor !== `member:${f.member}` && r.data?.memberId !== f.member) return false;
  if (f.result && (r.reason !== undefined) !== (f.result === 'failure')) return false;
  if (f.from !== undefined || f.to !== undefined) {
    const at = Date.parse(r.at);
    if (f.from !== undefined && at < f.from) return false;
    if (f.to !== undefined && at > f.to) return false;
  }
  return true;
}

/**
 * The audit trails: one Redis stream per tenant (and one for events with no tenant), written with
 * XADD and trimmed to `retentionDays` as it is written; read newest first with filters, in pages, by
 * a cursor. The capped list the trails were before (keys.audit) is read after the stream, never
 * written again: it ages out through the retention filter.
 */
export class AuditLog {
  private readonly retentionMs: number;
  /** j-events: where each tenant's entry is also appended as an event (EventLog.audit). */
  private forward?: (entry: AuditRecord) => Promise<void>;

  constructor(
    private readonly store: KeyValueStore,
    private readonly clock: Clock,
    private readonly logger: Logger,
    retentionDays = 90,
  ) {
    this.retentionMs = retentionDays * DAY_MS;
  }

  /** Records the event in the tenant's trail and in the log. Never throws: auditing a failure must not mask it. */
  async record(event: AuditEvent): Promise<void> {
    const now = this.clock.now();
    const entry: AuditRecord = { at: new Date(now).toISOString(), ...event };
    this.logger.info({ audit: entry }, event.type);
    try {
      await this.store.xAdd(event.domain ? keys.auditStream(event.domain) : keys.auditGlobalStream(), JSON.stringify(entry), {
        atMs: now,
        minIdMs: now - this.retentionMs,
      });
    } catch (err) {
      this.logger.error({ err, auditType: event.type }, 'audit event could not be stored');
    }
    if (this.forward && event.domain) await this.forward(entry);
  }

  /** Appends every tenant's entry to `forward` too (the tenant's events stream); it must not throw. */
  forwardTo(forward: (entry: AuditRecord) => Promise<void>): void {
    this.forward = forward;
  }

  /** Newest first (no filter). */
  async list(domain: string | null, limit = 100): Promise<StoredAuditRecord[]> {
    if (limit <= 0) return [];
    return (await this.page(domain, {}, { count: limit, budget: Number.MAX_SAFE_INTEGER })).events;
  }

  /**
   * One page of the trail, newest first: up to `count` events passing the filter, reading at most
   * `budget` events (AUDIT_PAGE_BUDGET by default). The cursor comes from the previous page.
   */
  async page(domain: string | null, filter: AuditFilter, options: { count: number; cursor?: string; budget?: number }): Promise<AuditPage> {
    const events: StoredAuditRecord[] = [];
    const batchSize = Math.min(WALK_BATCH, Math.max(options.count, 100));
    for await (const step of this.walk(domain, filter, decodeCursor(options.cursor), options.budget ?? AUDIT_PAGE_BUDGET, batchSize)) {
      if (!step.record) return { events, nextCursor: step.next ? encodeCursor(step.next) : null };
      events.push(step.record);
      if (events.length === options.count) return { events, nextCursor: step.next ? encodeCursor(step.next) : null };
    }
    return { events, nextCursor: null };
  }

  /**
   * Every event passing the filter, newest first, handed over in batches (at most a few hundred held
   * at a time); `onBatch` is awaited before the next read (a response's backpressure). Returns the count.
   */
  async forEach(domain: string | null, filter: AuditFilter, onBatch: (events: StoredAuditRecord[]) => Promise<void>): Promise<number> {
    let n = 0;
    let batch: StoredAuditRecord[] = [];
    for await (const step of this.walk(domain, filter, { in: 'stream', before: null }, Number.MAX_SAFE_INTEGER, WALK_BATCH)) {
      if (!step.record) break;
      batch.push(step.record);
      n++;
      if (batch.length === WALK_BATCH) {
        await onBatch(batch);
        batch = [];
      }
    }
    if (batch.length) await onBatch(batch);
    return n;
  }

  /** One event by its id, or null (unknown, or older than the retention). */
  async get(domain: string | null, id: string): Promise<StoredAuditRecord | null> {
    const oldest = this.clock.now() - this.retentionMs;
    let record: StoredAuditRecord | null = null;
    if (STREAM_ID_RE.test(id)) {
      const [entry] = await this.store.xRange(domain ? keys.auditStream(domain) : keys.auditGlobalStream(), { id }, { id }, 1);
      if (entry) record = { id: entry.id, ...(JSON.parse(entry.value) as AuditRecord) };
    } else {
      const legacy = LEGACY_ID_RE.exec(id);
      if (legacy) {
        const index = Number(legacy[1]);
        const [raw] = await this.store.lRange(domain ? keys.audit(domain) : keys.auditGlobal(), index, index);
        if (raw) record = { id, ...(JSON.parse(raw) as AuditRecord) };
      }
    }
    return record && Date.parse(record.at) >= oldest ? record : null;
  }

  /**
   * Walks the trail newest first from `start`: the stream, then the old list, reading `batchSize`
   * entries per store call. Yields each matching event with the position just after it; when the
   * trail ends (next null) or `budget` events have been read, yields a last step without a record.
   */
  private async *walk(domain: string | null, filter: AuditFilter, start: Position, budget: number, batchSize: number): AsyncGenerator<{ record?: StoredAuditRecord; next: Position | null }> {
    const from = Math.max(filter.from ?? 0, this.clock.now() - this.retentionMs);
    const f: AuditFilter = { ...filter, from };
    const streamKey = domain ? keys.auditStream(domain) : keys.auditGlobalStream();
    const listKey = domain ? keys.audit(domain) : keys.auditGlobal();
    let position: Position = start;
    let read = 0;
    while (read < budget) {
      const size = Math.min(batchSize, budget - read);
      if (position.in === 'stream') {
        const end: StreamBound = position.before ? { id: position.before, exclusive: true } : f.to !== undefined ? { id: String(Math.max(0, Math.floor(f.to))) } : '+';
        const entries = await this.store.xRevRange(streamKey, end, { id: String(Math.floor(from)) }, size);
        read += entries.length;
        for (const e of entries) {
          const r: StoredAuditRecord = { id: e.id, ...(JSON.parse(e.value) as AuditRecord) };
          position = { in: 'stream', before: e.id };
          if (matchesAudit(r, f)) yield { record: r, next: position };
        }
        if (entries.length < size) position = { in: 'list', index: 0 };
      } else {
        const raw = await this.store.lRange(listKey, position.index, position.index + size - 1);
        read += raw.length;
        for (const line of raw) {
          const r: StoredAuditRecord = { id: `legacy-${position.index}`, ...(JSON.parse(line) as AuditRecord) };
          position = { in: 'list', index: position.index + 1 };
          // The list is newest first: past `from`, everything further is older.
          if (Date.parse(r.at) < from) {
            yield { next: null };
            return;
          }
          if (matchesAudit(r, f)) yield { record: r, next: position };
        }
        if (raw.length < size) {
          yield { next: null };
          return;
        }
      }
    }
    yield { next: position };
  }
}
