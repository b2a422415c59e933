import type { Clock } from '../domain/clock.js';
import { AUDIT_MAX_ENTRIES, keys, type KeyValueStore } from '../store/index.js';
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

export class AuditLog {
  constructor(
    private readonly store: KeyValueStore,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  /** Records the event in the tenant's trail and in the log. Never throws: auditing a failure must not mask it. */
  async record(event: AuditEvent): Promise<void> {
    const entry: AuditRecord = { at: new Date(this.clock.now()).toISOString(), ...event };
    this.logger.info({ audit: entry }, event.type);
    try {
      await this.store.pushCapped(event.domain ? keys.audit(event.domain) : keys.auditGlobal(), JSON.stringify(entry), AUDIT_MAX_ENTRIES);
    } catch (err) {
      this.logger.error({ err, auditType: event.type }, 'audit event could not be stored');
    }
  }

  /** Newest first. */
  async list(domain: string | null, limit = 100): Promise<AuditRecord[]> {
    if (limit <= 0) return [];
    const raw = await this.store.lRange(domain ? keys.audit(domain) : keys.auditGlobal(), 0, limit - 1);
    return raw.map((r) => JSON.parse(r) as AuditRecord);
  }
}
