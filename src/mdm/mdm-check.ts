import type { Clock } from '../domain/clock.js';
import type { TenantRepository } from '../domain/tenants.js';
import { AppError } from '../errors/index.js';
import type { AuditLog } from '../observability/audit.js';
import type { Metrics } from '../observability/metrics.js';
import { digestForKey, keys, type KeyValueStore } from '../store/index.js';
import { sameGroup, type DeviceSession, type DeviceSessions } from './device-sessions.js';
import { DEVICE_ID_RE, type MdmKeys } from './mdm-keys.js';

/** Why a mobile request was refused (each is a public error code, docs/errors.md). */
export type MdmRefusal = 'mdm_code_required' | 'mdm_code_mismatch' | 'mdm_other_domain_restricted' | 'rate_limited';

export interface MdmCheckInput {
  /** The member's tenant. */
  domain: string;
  /** The member's tenant group; read from the tenant when left out. */
  memberGroup?: string | null;
  /** Header X-MDM-Auth-Code as received (undefined/null/'' = missing). */
  presentedCode?: string | null;
  /** Header X-Device-Id as received. */
  deviceId?: string | null;
  /** A login (code exchange, or the app asking first) or a refresh of an existing session: M-7 (a) vs (c)/(d). Default login. */
  kind?: 'login' | 'refresh';
  /** The OP grant of the request, when there is one (left out of the device's other sessions). */
  grantId?: string;
  /** Defaults to the injected clock. */
  now?: number;
  /** For the per-IP failure limit and the audit trail. */
  clientIp?: string;
  requestId?: string;
  /** Audit actor: `member:<id>` when known; `anonymous` otherwise. */
  actor?: string;
}

export type MdmCheckResult =
  | {
      ok: true;
      /** False when the tenant has no 3rd-party MDM sync (nothing was checked but M-7). */
      enforced: boolean;
      /** The key that admitted the request (null when not enforced): give it to MdmKeys.recordAdmission. */
      keyId: string | null;
      /**
       * M-7 (b)–(d): the device presents the key of this tenant, which restricts other-domain logins, and
       * the account belongs to it or its group. The OP ends other-group sessions on this device.
       */
      restrictedBy: { domain: string; group: string | null } | null;
      /** M-7 (b): sessions of other groups on the device, to end now (a login of the restricting group). */
      endOnDevice: DeviceSession[];
      /** This grant's entry in the device index as it was read (null: not there yet). */
      onDevice: DeviceSession | null;
    }
  | {
      ok: false;
      reason: MdmRefusal;
      /** The key the device presented, when it is one of the tenant's keys (never the value). */
      keyId: string | null;
      /** Set when reason is rate_limited. */
      retryAfterSeconds?: number;
    };

export interface MdmCheckLimits {
  /** Failed checks counted per device and per client IP in fixed windows of this length. */
  windowMs: number;
  perDevice: number;
  perIp: number;
}

export const DEFAULT_MDM_CHECK_LIMITS: MdmCheckLimits = { windowMs: 5 * 60_000, perDevice: 10, perIp: 100 };
const MAX_CODE_LENGTH = 256;
const PRINTABLE_RE = /^[\x21-\x7e]+$/;

export interface MdmCheckDeps {
  store: KeyValueStore;
  clock: Clock;
  tenants: TenantRepository;
  mdmKeys: MdmKeys;
  deviceSessions: DeviceSessions;
  audit: AuditLog;
  /** Counts results as idpb_mdm_checks_total. */
  metrics?: Metrics;
  limits?: Partial<MdmCheckLimits>;
}

/**
 * The MDM check of a mobile request (M-5, M-7, M-10, M-11, M-14), framework-free: the OpenID
 * Provider calls it on every mobile token request (code exchange = login, refresh), and
 * `POST /mobile/mdm/check` lets the app ask before it opens the browser. The steps, in order:
 * 1. over the failure limit of this device or IP → rate_limited (even a right code: no guessing on);
 * 2. tenant without 3rd-party MDM sync → no code needed, but step 5 still applies;
 * 3. no code or no device id → mdm_code_required;
 * 4. the code equals no key that admits now (constant time) → mdm_code_mismatch;
 * 5. M-7: a tenant restricting other-domain logins covers the device (its key is presented, or a
 *    session it admitted lives on the device) and the account is outside its group →
 *    mdm_other_domain_restricted for a login (a), and for a refresh when an account of that group is
 *    logged in on the device (c); otherwise the refresh passes (d). A login of the group's own
 *    accounts returns the other-group sessions on the device, which the OP ends at once (b).
 * Every failure counts toward the limits and is audited (`mdm_check.failed`) with the key id tried or
 * null — never the value. A success records when the key was last presented.
 */
export class MdmCheck {
  private readonly limits: MdmCheckLimits;

  constructor(private readonly deps: MdmCheckDeps) {
    this.limits = { ...DEFAULT_MDM_CHECK_LIMITS, ...deps.limits };
  }

  /** Whether mobile token requests of this tenant's members need the MDM headers (M-5). */
  isMdmEnforced(domain: string): Promise<boolean> {
    return this.deps.mdmKeys.isMdmEnforced(domain);
  }

  async check(input: MdmCheckInput): Promise<MdmCheckResult> {
    const result = await this.decide(input);
    this.deps.metrics?.mdmChecks.inc({ domain: input.domain, result: result.ok ? (result.enforced ? 'ok' : 'not_enforced') : result.reason });
    return result;
  }

  private async decide(input: MdmCheckInput): Promise<MdmCheckResult> {
    const now = input.now ?? this.deps.clock.now();
    const domain = input.domain;
    const code = input.presentedCode ?? '';
    const deviceId = input.deviceId ?? '';
    const kind = input.kind ?? 'login';
    const deviceKnown = DEVICE_ID_RE.test(deviceId);
    const wellFormed = code.length > 0 && code.length <= MAX_CODE_LENGTH && PRINTABLE_RE.test(code);
    // Every read the decision may need, at once (ioredis pipelines them): this runs on every mobile refresh.
    const [settings, memberGroup, deviceSessions, limitedIfChecked, match, holders] = await Promise.all([
      this.deps.mdmKeys.settings(domain),
      input.memberGroup !== undefined ? input.memberGroup : this.deps.tenants.find(domain).then((t) => t?.group ?? null),
      deviceKnown ? this.deps.deviceSessions.list(deviceId, input.grantId) : [],
      code !== '' || deviceKnown ? this.overLimit(deviceId, input.clientIp, now) : null,
      wellFormed ? this.deps.mdmKeys.match(domain, code, now) : null,
      wellFormed ? this.deps.mdmKeys.holdersOf(code, now, domain) : [],
    ]);
    const enforced = settings.mode === 'external';
    if (!enforced && code === '' && !deviceKnown) return { ok: true, enforced: false, keyId: null, restrictedBy: null, endOnDevice: [], onDevice: null };

    const limited = enforced || code !== '' ? limitedIfChecked : null;
    if (limited !== null) {
      await this.audit(input, domain, { reason: 'rate_limited', keyId: null, detail: limited.subject });
      return { ok: false, reason: 'rate_limited', keyId: null, retryAfterSeconds: limited.retryAfterSeconds };
    }

    let keyId: string | null = null;
    if (enforced) {
      if (code === '') return this.fail(input, domain, now, 'mdm_code_required', null, 'code_missing');
      if (!DEVICE_ID_RE.test(deviceId)) return this.fail(input, domain, now, 'mdm_code_required', null, deviceId === '' ? 'device_id_missing' : 'device_id_invalid');
      if (!wellFormed) return this.fail(input, domain, now, 'mdm_code_mismatch', null, 'code_malformed');
      if (match === null) return this.fail(input, domain, now, 'mdm_code_mismatch', null, 'code_malformed');
      if (!match.admitted) return this.fail(input, domain, now, 'mdm_code_mismatch', match.keyId, match.state);
      keyId = match.keyId;
    }

    // M-7: tenants restricting other-domain logins whose reach covers this device.
    const member = { domain, group: memberGroup };
    const onDevice = deviceSessions.filter((d) => d.grantId !== input.grantId);
    let restrictedBy: { domain: string; group: string | null } | null = null;
    for (const restrictor of await this.restrictorsOf(enforced && settings.restrictOtherDomains ? member : null, holders, onDevice)) {
      if (sameGroup(member, restrictor)) {
        restrictedBy = restrictor;
        continue;
      }
      // (a) no new login of an account outside the group; (c) an existing session ends at its next
      // refresh once an account of the group is logged in on the device; (d) until then it stays.
      const groupLoggedIn = onDevice.some((d) => sameGroup(d, restrictor));
      if (kind === 'login' || groupLoggedIn) {
        await this.deps.audit.record({
          type: 'mdm_check.other_domain_refused',
          domain: restrictor.domain,
          actor: 'anonymous',
          requestId: input.requestId,
          ip: input.clientIp,
          reason: 'mdm_other_domain_restricted',
          data: { deviceId: deviceId.slice(0, 200) || null, kind, accountDomain: domain },
        });
        return this.fail(input, domain, now, 'mdm_other_domain_restricted', null, kind === 'login' ? 'restricting_tenant_device' : 'restricting_group_logged_in_on_device');
      }
    }
    // (b) a login of an account of the restricting group ends the other-group sessions on the device.
    const endOnDevice = kind === 'login' && restrictedBy !== null ? onDevice.filter((d) => !sameGroup(d, restrictedBy)) : [];

    if (keyId !== null) await this.deps.mdmKeys.notePresented(domain, keyId, now);
    return { ok: true, enforced, keyId, restrictedBy, endOnDevice, onDevice: deviceSessions.find((d) => d.grantId === input.grantId) ?? null };
  }

  /**
   * The restricting tenants (external MDM sync with restrictOtherDomains) that cover this request: the
   * member's own tenant, the tenants whose key the device presents, and the tenants whose restricted
   * sessions live on the device.
   */
  private async restrictorsOf(own: { domain: string; group: string | null } | null, codeHolders: string[], onDevice: DeviceSession[]): Promise<Array<{ domain: string; group: string | null }>> {
    const found = new Map<string, { domain: string; group: string | null }>();
    if (own) found.set(own.domain, own);
    const candidates = new Set<string>([...onDevice.flatMap((d) => (d.restrictedBy ? [d.restrictedBy] : [])), ...codeHolders]);
    for (const domain of candidates) {
      if (found.has(domain)) continue;
      const settings = await this.deps.mdmKeys.settings(domain);
      if (settings.mode !== 'external' || !settings.restrictOtherDomains) continue;
      found.set(domain, { domain, group: (await this.deps.tenants.find(domain))?.group ?? null });
    }
    return [...found.values()];
  }

  /** Throws the refusal as an AppError (for routes). */
  static toError(result: Extract<MdmCheckResult, { ok: false }>): AppError {
    return new AppError(result.reason, { detail: `mdm check refused${result.keyId ? ` (key ${result.keyId})` : ''}` });
  }

  private windowOf(now: number): number {
    return Math.floor(now / this.limits.windowMs);
  }

  private counterKeys(deviceId: string, ip: string | undefined, now: number): Array<{ key: string; limit: number; subject: string }> {
    const w = this.windowOf(now);
    const out: Array<{ key: string; limit: number; subject: string }> = [];
    if (deviceId) out.push({ key: keys.rateLimit('mdm-fail-device', digestForKey(`${w}:${deviceId}`)), limit: this.limits.perDevice, subject: 'device' });
    if (ip) out.push({ key: keys.rateLimit('mdm-fail-ip', digestForKey(`${w}:${ip}`)), limit: this.limits.perIp, subject: 'ip' });
    return out;
  }

  private async overLimit(deviceId: string, ip: string | undefined, now: number): Promise<{ subject: string; retryAfterSeconds: number } | null> {
    const counters = this.counterKeys(deviceId, ip, now);
    const counts = await Promise.all(counters.map((c) => this.deps.store.get(c.key)));
    for (const [i, c] of counters.entries()) {
      if (Number(counts[i] ?? 0) >= c.limit) {
        const windowEnd = (this.windowOf(now) + 1) * this.limits.windowMs;
        return { subject: `${c.subject}_limit`, retryAfterSeconds: Math.max(1, Math.ceil((windowEnd - now) / 1000)) };
      }
    }
    return null;
  }

  private async fail(input: MdmCheckInput, domain: string, now: number, reason: Exclude<MdmRefusal, 'rate_limited'>, keyId: string | null, detail: string): Promise<MdmCheckResult> {
    for (const c of this.counterKeys(input.deviceId ?? '', input.clientIp, now)) await this.deps.store.incr(c.key, this.limits.windowMs);
    await this.audit(input, domain, { reason, keyId, detail });
    return { ok: false, reason, keyId };
  }

  private audit(input: MdmCheckInput, domain: string, what: { reason: MdmRefusal; keyId: string | null; detail: string }): Promise<void> {
    return this.deps.audit.record({
      type: 'mdm_check.failed',
      domain,
      actor: input.actor ?? 'anonymous',
      requestId: input.requestId,
      ip: input.clientIp,
      reason: what.reason,
      data: { keyId: what.keyId, detail: what.detail, deviceId: (input.deviceId ?? '').slice(0, 200) || null },
    });
  }
}
