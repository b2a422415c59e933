import type { Request } from 'express';
import type { Clock } from '../domain/clock.js';
import { AppError } from '../errors/index.js';
import { keys, type KeyValueStore } from '../store/index.js';
import type { AuditRecord } from './audit.js';
import type { Logger } from './logger.js';

/** How a sign-in was attempted. */
export type SignInProtocol = 'saml' | 'oauth' | 'oidc' | 'password';

/**
 * One event of a tenant, as the pull API and the webhooks hand it out. Types: `sign_in.succeeded`,
 * `sign_in.refused`, and `audit.<audit type>` for every audit entry of the tenant. Never a secret:
 * ids, codes, the client's address and a bounded user agent.
 */
export interface TenantEvent {
  /** The stream id `<ms>-<seq>`: unique within the tenant, increasing; receivers de-duplicate by it. */
  id: string;
  type: string;
  /** ISO 8601. */
  at: string;
  domain: string;
  memberId?: string;
  protocol?: SignInProtocol;
  /** The public error code of a refusal. */
  code?: string;
  /** The private reason of a refusal (a code, never free text from the request). */
  reason?: string;
  ip?: string;
  userAgent?: string;
  requestId?: string;
  /** Audit entries: who acted (`member:<id>`, `admin:<key id>`, `operator`, `idp`, `anonymous`). */
  actor?: string;
  data?: Record<string, string | number | boolean | null>;
}

export interface SignInEvent {
  domain: string | undefined;
  result: 'succeeded' | 'refused';
  protocol: SignInProtocol;
  memberId?: string;
  code?: string;
  reason?: string;
}

export interface EventPage {
  events: TenantEvent[];
  /** Pass as `after` for the next page: the last event's id, or the `after` given when the page is empty. */
  next: string | null;
}

const DAY_MS = 24 * 3600_000;
const STREAM_ID_RE = /^\d{1,16}-\d{1,16}$/;
/** The longest user agent kept; longer ones are cut. */
export const USER_AGENT_MAX = 256;
const FIELD_MAX = 100;

const bounded = (v: string | undefined, max: number): string | undefined => (v === undefined ? undefined : v.slice(0, max));

/**
 * The events of every tenant (docs/spec.md §11 "Events out"): one stream per tenant in the store,
 * written with one XADD per event and trimmed to `retentionDays` as it is written, read oldest first
 * after a cursor (the last id read). Sign-ins are appended here by the login routes; audit entries
 * are appended by AuditLog (`audit.<type>`). Webhook delivery reads the same stream in the background.
 */
export class EventLog {
  private readonly retentionMs: number;

  constructor(
    private readonly store: KeyValueStore,
    private readonly clock: Clock,
    private readonly logger: Logger,
    retentionDays = 90,
  ) {
    this.retentionMs = retentionDays * DAY_MS;
  }

  /** Appends one event (one XADD). Never throws: an event must not fail a sign-in. */
  async append(domain: string, event: Omit<TenantEvent, 'id' | 'at' | 'domain'>): Promise<void> {
    const now = this.clock.now();
    const entry = { at: new Date(now).toISOString(), domain, ...event };
    try {
      await this.store.xAdd(keys.events(domain), JSON.stringify(entry), { atMs: now, minIdMs: now - this.retentionMs });
    } catch (err) {
      this.logger.error({ err, domain, eventType: event.type }, 'event could not be stored');
    }
  }

  /** A sign-in success or refusal, with the client's address and a bounded user agent. Nothing for no tenant. */
  async signIn(req: Request, e: SignInEvent): Promise<void> {
    if (!e.domain) return;
    await this.append(e.domain, {
      type: `sign_in.${e.result}`,
      protocol: e.protocol,
      ...(e.memberId ? { memberId: bounded(e.memberId, 200) } : {}),
      ...(e.code ? { code: bounded(e.code, FIELD_MAX) } : {}),
      ...(e.reason ? { reason: bounded(e.reason, FIELD_MAX) } : {}),
      ...(req.ip ? { ip: req.ip } : {}),
      ...(req.get('user-agent') ? { userAgent: bounded(req.get('user-agent'), USER_AGENT_MAX) } : {}),
      ...(typeof req.res?.locals.requestId === 'string' ? { requestId: req.res.locals.requestId } : {}),
    });
  }

  /** An audit entry of a tenant as an event `audit.<type>`. */
  async audit(record: AuditRecord): Promise<void> {
    if (!record.domain) return;
    const { type, domain, actor, requestId, ip, reason, data } = record;
    await this.append(domain, { type: `audit.${type}`, actor, ...(requestId ? { requestId } : {}), ...(ip ? { ip } : {}), ...(reason ? { reason } : {}), ...(data ? { data } : {}) });
  }

  /** Up to `limit` events strictly after `after` (an event id; none: from the oldest kept), oldest first. */
  async page(domain: string, after: string | undefined, limit: number): Promise<EventPage> {
    if (after !== undefined && !STREAM_ID_RE.test(after)) {
      throw new AppError('validation_failed', { details: [{ path: 'after', message: 'is not an event id' }], detail: 'bad events cursor' });
    }
    const { events, lastId } = await this.read(domain, after, limit);
    return { events, next: lastId ?? after ?? null };
  }

  /**
   * The events after `after`, oldest first (at most `limit` read), those past the retention left out;
   * `lastId` is the last id read (the cursor to go on from), null when nothing was read.
   */
  async read(domain: string, after: string | undefined, limit: number): Promise<{ events: TenantEvent[]; lastId: string | null }> {
    const oldest = this.clock.now() - this.retentionMs;
    const entries = await this.store.xRange(keys.events(domain), after ? { id: after, exclusive: true } : '-', '+', limit);
    const events = entries.map((e) => ({ id: e.id, ...(JSON.parse(e.value) as Omit<TenantEvent, 'id'>) })).filter((e) => Date.parse(e.at) >= oldest);
    return { events, lastId: entries.length ? entries[entries.length - 1]!.id : null };
  }

  /** The newest event's id, or null. */
  async newestId(domain: string): Promise<string | null> {
    const [e] = await this.store.xRevRange(keys.events(domain), '+', '-', 1);
    return e?.id ?? null;
  }

  /** Given events by id (redelivery), oldest first; those trimmed away are left out. */
  async byIds(domain: string, ids: string[]): Promise<TenantEvent[]> {
    const out: TenantEvent[] = [];
    for (const id of ids) {
      if (!STREAM_ID_RE.test(id)) continue;
      const [e] = await this.store.xRange(keys.events(domain), { id }, { id }, 1);
      if (e) out.push({ id: e.id, ...(JSON.parse(e.value) as Omit<TenantEvent, 'id'>) });
    }
    return out;
  }
}
