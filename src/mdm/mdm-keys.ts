import { createHash, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { sameSecret } from '../domain/secret-compare.js';
import type { Clock } from '../domain/clock.js';
import type { SecretBox } from '../domain/secret-box.js';
import type { Tenant } from '../domain/tenant.js';
import { AppError } from '../errors/index.js';
import { keys, LeaseLock, type AtomicOp, type KeyValueStore } from '../store/index.js';

/**
 * MDM settings and keys of a tenant (docs/spec.md §8 M-1 … M-10, §9 M-11 … M-14): storage and rules.
 *
 * Storage (all of a tenant's records under its hash tag `idpb:{domain}:mdm…`, written with one MULTI):
 * - `mdm`                 settings JSON `{mode, restrictOtherDomains, updatedAt}`;
 * - `mdm:keys`            hash keyId → key record: the value SEALED (SecretBox, context binds tenant and
 *                         key id), a keyed digest (HMAC, for the uniqueness index), source, status,
 *                         createdAt, effectiveFrom, graceUntil, revokedAt;
 * - `mdm:last-presented`  hash keyId → ms of the last successful check (kept apart from the records so
 *                         the check path never rewrites a record an admin is changing);
 * - `mdm:admissions:<id>` hash grantId → `{deviceId, expiresAt}`: mobile sessions that key admitted;
 * - `mdm:admitted-by`     hash grantId → keyId (the reverse, so a grant moves when another key re-admits it);
 * - `mdm:builtin-exceptions` hash id → built-in MDM exception setting;
 * and one global index `idpb:mdm-key-digest:<hmac>` → set of domains holding an active key with that
 * value (M-7). The index is a candidate list: every hit is verified against the holder's records, and
 * stale entries are dropped, so a crash between the tenant write and the index write never refuses or
 * admits anything wrongly.
 *
 * Grace (M-6): a reissue with `graceSeconds` leaves the replaced keys `active` with `graceUntil`; they
 * admit until then and count as revoked from that instant (listed as `revoked`, reason `grace_ended`;
 * the record is rewritten at the next change of the tenant's MDM keys).
 *
 * Every time rule reads the injected clock.
 */

export const MDM_VALUE_TYPE = 'String';
/** M-11. */
export const MDM_MAX_ACTIVE_KEYS = 5;
/** Revoked and inactive keys kept for audit; older ones are dropped. */
export const MDM_KEPT_HISTORY = 30;
export const MDM_MAX_BUILTIN_EXCEPTIONS = 1000;
/** Longest grace a reissue may give the replaced keys (M-6). */
export const MDM_MAX_GRACE_SECONDS = 30 * 86_400;
/** How far ahead a key may be scheduled (M-14). */
export const MDM_MAX_EFFECTIVE_AHEAD_MS = 366 * 86_400_000;
/** lastPresentedAt is rewritten at most this often per key (the check is on every mobile token request). */
const LAST_PRESENTED_RESOLUTION_MS = 60_000;
const PRESENTED_MEMO_MAX = 10_000;
const LOCK_WAIT_MS = 3_000;

/** M-2: a custom value is 16–256 printable ASCII characters, no spaces. */
export const CUSTOM_KEY_RE = /^[\x21-\x7e]{16,256}$/;
export const CUSTOM_KEY_MESSAGE = 'must be 16–256 printable ASCII characters without spaces';
/** The app's install id (X-Device-Id). */
export const DEVICE_ID_RE = /^[\x21-\x7e]{1,200}$/;
const KEY_ID_RE = /^mk_[A-Za-z0-9_-]{16}$/;

export type MdmMode = 'none' | 'builtin' | 'external';

export interface MdmSettings {
  mode: MdmMode;
  restrictOtherDomains: boolean;
  updatedAt: number | null;
}

type KeyStatus = 'active' | 'revoked' | 'inactive';
type EndReason = 'revoked' | 'reissued' | 'replaced' | 'grace_ended' | 'disabled';

interface StoredKey {
  id: string;
  /** `enc:v1:…`, context `mdmKeyContext(domain, id)`. */
  sealed: string;
  /** HMAC-SHA256 of the value under the pepper `pepperId`: the uniqueness index entry. */
  digest: string;
  pepperId: string;
  source: 'auto' | 'custom';
  status: KeyStatus;
  createdAt: number;
  effectiveFrom: number;
  graceUntil?: number;
  revokedAt?: number;
  endReason?: EndReason;
}

/** A key as the admin API lists it: never the value, only a mask (M-13). */
export interface MdmKeyView {
  id: string;
  masked: string;
  source: 'auto' | 'custom';
  status: KeyStatus;
  /** Admits devices right now (active, effectiveFrom reached, grace not over). */
  admitting: boolean;
  createdAt: string;
  effectiveFrom: string;
  graceUntil: string | null;
  revokedAt: string | null;
  endReason: EndReason | null;
  lastPresentedAt: string | null;
  liveSessions: number;
}

export interface IssuedKey {
  id: string;
  value: string;
}

/** A mobile session (OP grant) a key admitted. */
export interface MdmAdmission {
  grantId: string;
  deviceId: string;
  keyId: string;
  /** ms; absent = until forgotten. */
  expiresAt?: number;
}

/**
 * The OpenID Provider registers one of these to end mobile sessions when keys change (M-4, M-12).
 * Both must be idempotent.
 */
export interface MdmSessionEnder {
  /** M-12: the key that admitted these grants was revoked. Returns how many sessions ended. */
  endMobileSessions(domain: string, admissions: readonly MdmAdmission[]): Promise<number>;
  /** M-4: MDM sync was switched on or the key reissued: end every mobile session of the tenant not admitted by one of these keys. */
  endMobileSessionsExcept(domain: string, keepKeyIds: readonly string[]): Promise<number>;
  /** What endMobileSessionsExcept would end now, ending nothing (the preview before switching on). */
  countMobileSessionsExcept?(domain: string, keepKeyIds: readonly string[]): Promise<number>;
}

export interface BuiltinException {
  id: string;
  account: string;
  note: string | null;
  createdAt: string;
}

export interface ConfigureInput {
  mode: MdmMode;
  restrictOtherDomains?: boolean;
  customKey?: string;
}

export interface ConfigureResult {
  settings: MdmSettings;
  previousMode: MdmMode;
  key: IssuedKey | null;
  builtinExceptionsDeleted: number;
  keysDeactivated: number;
  keysReplaced: string[];
  mobileSessionsEnded: number;
}

export interface ReissueResult extends IssuedKey {
  replaced: string[];
  graceUntil: number | null;
  mobileSessionsEnded: number;
}

export interface RevokeResult {
  revoked: string;
  mobileSessionsEnded: number;
  /** `replacement: 'new'`: the key issued in its place. */
  replacement: IssuedKey | null;
  /** `replacement: <key id>`: the remaining key named to take over (admitting from now on). */
  takenOverBy: { id: string; effectiveFrom: number } | null;
}

/** What revoking a key needs when it is the last one admitting devices: `'new'` (a new key), or the id of a remaining key to bring forward. */
export type RevokeReplacement = string;

/** What PUT …/mdm would do, without doing it (POST …/mdm/preview). */
export interface ConfigurePreview {
  mode: MdmMode;
  previousMode: MdmMode;
  /** `plan_required` when the plan refuses the mode, else null. */
  refusal: 'plan_required' | null;
  /** Input problems the PUT would refuse with (400 validation_failed). */
  problems: Array<{ path: string; message: string }>;
  /** A key is issued (switching on, a custom value while on, or no active key). */
  issuesKey: boolean;
  builtinExceptionsDeleted: number;
  mobileSessionsEnded: number;
  keysReplaced: number;
  keysDeactivated: number;
}

/** How a presented code compares with a tenant's keys. */
export type KeyMatch =
  | { admitted: true; keyId: string }
  | { admitted: false; keyId: string | null; state: 'no_key_matched' | 'key_not_yet_effective' | 'key_grace_ended' | 'key_revoked' | 'key_inactive' };

export interface MdmKeysDeps {
  store: KeyValueStore;
  clock: Clock;
  secrets: SecretBox;
  /** The gateway's secret keys: the keyed digests of the uniqueness index derive from them (first one writes, all are looked up). */
  secretKeys: readonly string[];
  sessionEnders?: MdmSessionEnder[];
  /**
   * Whether an OP grant still exists. A key's live sessions count only grants that do: a session can end
   * without the MDM code hearing of it (sign-out, the SSO switch, expiry). Without it every recorded
   * admission counts until forgotten or past its expiresAt.
   */
  isGrantLive?: (grantId: string) => Promise<boolean>;
}

const mdmKeyContext = (domain: string, keyId: string): string => `tenant:${domain}:mdm.key:${keyId}`;
const defaultSettings = (): MdmSettings => ({ mode: 'none', restrictOtherDomains: false, updatedAt: null });
const iso = (ms: number | undefined | null): string | null => (ms === undefined || ms === null ? null : new Date(ms).toISOString());


/** First 4 characters and an ellipsis: enough to tell keys apart in a list, far too little to use. */
export function maskKey(value: string): string {
  return `${value.slice(0, 4)}…`;
}

/** A new key value: 256 random bits, base64url (M-2 asks for ≥128). */
export function generateKeyValue(): string {
  return randomBytes(32).toString('base64url');
}

function newKeyId(): string {
  return `mk_${randomBytes(12).toString('base64url')}`;
}

/** A key past its grace is revoked from that instant, whether or not the record says so yet. */
function effectiveStatus(k: StoredKey, now: number): KeyStatus {
  if (k.status === 'active' && k.graceUntil !== undefined && now >= k.graceUntil) return 'revoked';
  return k.status;
}

function admits(k: StoredKey, now: number): boolean {
  return effectiveStatus(k, now) === 'active' && k.effectiveFrom <= now;
}

/** M-2, M-7: what PUT …/mdm refuses in its input, whatever the stored state. */
function configureProblems(input: ConfigureInput): Array<{ path: string; message: string }> {
  const problems: Array<{ path: string; message: string }> = [];
  if (input.customKey !== undefined && input.mode !== 'external') problems.push({ path: 'customKey', message: 'is only used with mode "external"' });
  if (input.customKey !== undefined && !CUSTOM_KEY_RE.test(input.customKey)) problems.push({ path: 'customKey', message: CUSTOM_KEY_MESSAGE });
  if (input.restrictOtherDomains === true && input.mode !== 'external') problems.push({ path: 'restrictOtherDomains', message: 'is only available with mode "external"' });
  return problems;
}

/** M-1: 3rd-party MDM sync is for plans standard and advanced. */
export function planAllowsExternal(plan: string): boolean {
  return plan === 'standard' || plan === 'advanced';
}

const mdmBusy = (retryAfterSeconds?: number): AppError =>
  new AppError('conflict', { detail: 'mdm lock held', message: 'The MDM settings of this organisation are being changed right now. Please retry in a moment.', retryAfterSeconds });

/** A short mutex in the store (a LeaseLock, renewed while held); waits up to LOCK_WAIT_MS for it. */
function withLock<T>(store: KeyValueStore, key: string, fn: () => Promise<T>): Promise<T> {
  return LeaseLock.run(store, key, { busy: mdmBusy, lost: () => mdmBusy(), waitMs: LOCK_WAIT_MS }, () => fn());
}

export class MdmKeys {
  private readonly peppers: Array<{ id: string; key: Buffer }>;
  private readonly sessionEnders: MdmSessionEnder[];
  /** domain + key id → when this process last saw lastPresentedAt written (M-13 is kept to the minute). */
  private readonly presentedMemo = new Map<string, number>();

  constructor(private readonly deps: MdmKeysDeps) {
    if (deps.secretKeys.length === 0) throw new Error('MdmKeys needs at least one secret key');
    this.peppers = deps.secretKeys.map((secret) => {
      const key = Buffer.from(hkdfSync('sha256', secret, 'idp-bridge', 'mdm-key-digest v1', 32));
      return { id: createHash('sha256').update(key).digest('base64url').slice(0, 8), key };
    });
    this.sessionEnders = deps.sessionEnders ?? [];
  }

  /** The OpenID Provider registers how mobile sessions end (M-4, M-12). */
  registerSessionEnder(ender: MdmSessionEnder): void {
    this.sessionEnders.push(ender);
  }

  // ---------------------------------------------------------------- settings

  async settings(domain: string): Promise<MdmSettings> {
    const raw = await this.deps.store.get(keys.mdmSettings(domain));
    return raw === null ? defaultSettings() : { ...defaultSettings(), ...(JSON.parse(raw) as Partial<MdmSettings>) };
  }

  /** True while 3rd-party MDM sync is on: every mobile token request of the tenant's members needs a key (M-5). */
  async isMdmEnforced(domain: string): Promise<boolean> {
    return (await this.settings(domain)).mode === 'external';
  }

  /** M-1, M-2, M-7, M-9: PUT …/mdm. */
  async configure(tenant: Tenant, input: ConfigureInput): Promise<ConfigureResult> {
    const domain = tenant.domain;
    if (input.mode === 'external' && !planAllowsExternal(tenant.plan)) {
      throw new AppError('plan_required', { detail: `mdm external on plan ${tenant.plan}` });
    }
    const problems = configureProblems(input);
    if (problems.length) throw new AppError('validation_failed', { details: problems, detail: problems.map((p) => p.path).join(',') });

    const outcome = await this.locked(domain, async () => {
      const now = this.deps.clock.now();
      const { ops, indexRemovals, records } = await this.settle(domain, now);
      const previous = await this.settings(domain);
      const settings: MdmSettings = {
        mode: input.mode,
        restrictOtherDomains: input.restrictOtherDomains ?? (input.mode === 'external' ? previous.restrictOtherDomains : false),
        updatedAt: now,
      };
      const result = {
        settings,
        previousMode: previous.mode,
        key: null as IssuedKey | null,
        builtinExceptionsDeleted: 0,
        keysDeactivated: 0,
        keysReplaced: [] as string[],
        keepKeyIds: null as string[] | null,
      };
      const active = records.filter((k) => effectiveStatus(k, now) === 'active');

      if (input.mode === 'external') {
        if (previous.mode !== 'external') {
          // M-1: built-in MDM and 3rd-party sync never hold at once.
          result.builtinExceptionsDeleted = await this.deps.store.hLen(keys.mdmBuiltinExceptions(domain));
          ops.push({ op: 'del', key: keys.mdmBuiltinExceptions(domain) });
        }
        // M-2, M-9: switching on (or on again) issues a key; a custom value given while on replaces the keys.
        const issue = previous.mode !== 'external' || input.customKey !== undefined || active.length === 0;
        if (issue) {
          const value = input.customKey ?? generateKeyValue();
          const created = this.newRecord(domain, value, input.customKey === undefined ? 'auto' : 'custom', now, now);
          const replaced = active;
          for (const k of replaced) {
            ops.push(this.putOp(domain, { ...k, status: 'revoked', revokedAt: now, endReason: 'replaced', graceUntil: undefined }));
            indexRemovals.push(k.digest);
          }
          result.keysReplaced = replaced.map((k) => k.id);
          result.keepKeyIds = [created.id];
          await this.withUniqueValue(domain, settings.restrictOtherDomains, input.customKey === undefined ? [] : [value], async () => {
            await this.indexAdd(created.digest, domain);
            await this.commit(domain, [...ops, this.putOp(domain, created), { op: 'set', key: keys.mdmSettings(domain), value: JSON.stringify(settings) }], records, now);
          });
          result.key = { id: created.id, value };
        } else {
          const turningOn = settings.restrictOtherDomains && !previous.restrictOtherDomains;
          await this.withUniqueValue(domain, turningOn, turningOn ? active.map((k) => this.open(domain, k)) : [], async () => {
            await this.commit(domain, [...ops, { op: 'set', key: keys.mdmSettings(domain), value: JSON.stringify(settings) }], records, now);
          });
        }
      } else {
        if (previous.mode === 'external') {
          // M-9: keys are kept, inactive, for audit; checks stop at once; sessions stay.
          for (const k of active) {
            ops.push(this.putOp(domain, { ...k, status: 'inactive', revokedAt: now, endReason: 'disabled' }));
            indexRemovals.push(k.digest);
          }
          result.keysDeactivated = active.length;
        }
        await this.commit(domain, [...ops, { op: 'set', key: keys.mdmSettings(domain), value: JSON.stringify(settings) }], records, now);
      }
      await this.indexRemove(domain, indexRemovals);
      return result;
    });

    let mobileSessionsEnded = 0;
    if (outcome.keepKeyIds) {
      mobileSessionsEnded = await this.endExcept(domain, outcome.keepKeyIds);
      await this.dropAdmissionsExcept(domain, outcome.keepKeyIds);
    }
    return {
      settings: outcome.settings,
      previousMode: outcome.previousMode,
      key: outcome.key,
      builtinExceptionsDeleted: outcome.builtinExceptionsDeleted,
      keysDeactivated: outcome.keysDeactivated,
      keysReplaced: outcome.keysReplaced,
      mobileSessionsEnded,
    };
  }

  /**
   * What `configure` would do now, with counts, changing nothing (M-1, M-4, M-9): the console's
   * precautions before switching on. The counts are of this instant; the PUT may find others.
   */
  async preview(tenant: Tenant, input: ConfigureInput): Promise<ConfigurePreview> {
    const domain = tenant.domain;
    const now = this.deps.clock.now();
    const [previous, records, exceptions] = await Promise.all([this.settings(domain), this.records(domain), this.deps.store.hLen(keys.mdmBuiltinExceptions(domain))]);
    const active = records.filter((k) => effectiveStatus(k, now) === 'active');
    const external = input.mode === 'external';
    const switchingOn = external && previous.mode !== 'external';
    const switchingOff = !external && previous.mode === 'external';
    const issuesKey = external && (switchingOn || input.customKey !== undefined || active.length === 0);
    let mobileSessionsEnded = 0;
    if (issuesKey) for (const ender of this.sessionEnders) mobileSessionsEnded += (await ender.countMobileSessionsExcept?.(domain, [])) ?? 0;
    return {
      mode: input.mode,
      previousMode: previous.mode,
      refusal: external && !planAllowsExternal(tenant.plan) ? 'plan_required' : null,
      problems: configureProblems(input),
      issuesKey,
      builtinExceptionsDeleted: switchingOn ? exceptions : 0,
      mobileSessionsEnded,
      keysReplaced: issuesKey ? active.length : 0,
      keysDeactivated: switchingOff ? active.length : 0,
    };
  }

  // ---------------------------------------------------------------- keys

  /** M-13: every key, masked, with rotation progress. */
  async list(domain: string): Promise<MdmKeyView[]> {
    const now = this.deps.clock.now();
    const records = await this.records(domain);
    const lastPresented = await this.deps.store.hGetAll(keys.mdmKeyLastPresented(domain));
    const views = await Promise.all(
      records.map(async (k): Promise<MdmKeyView> => {
        const status = effectiveStatus(k, now);
        return {
          id: k.id,
          masked: maskKey(this.open(domain, k)),
          source: k.source,
          status,
          admitting: admits(k, now),
          createdAt: iso(k.createdAt)!,
          effectiveFrom: iso(k.effectiveFrom)!,
          graceUntil: iso(k.graceUntil),
          revokedAt: status === 'revoked' && k.status === 'active' ? iso(k.graceUntil) : iso(k.revokedAt),
          endReason: status === 'revoked' && k.status === 'active' ? 'grace_ended' : (k.endReason ?? null),
          lastPresentedAt: iso(lastPresented[k.id] === undefined ? null : Number(lastPresented[k.id])),
          liveSessions: await this.liveSessions(domain, k.id, now),
        };
      }),
    );
    const rank = (v: MdmKeyView): number => (v.status === 'active' ? 0 : 1);
    return views.sort((a, b) => rank(a) - rank(b) || b.createdAt.localeCompare(a.createdAt));
  }

  /** M-12: adds a key (auto or custom, optional effectiveFrom). */
  async add(tenant: Tenant, input: { value?: string; effectiveFrom?: number }): Promise<IssuedKey & { effectiveFrom: number }> {
    const domain = tenant.domain;
    if (input.value !== undefined && !CUSTOM_KEY_RE.test(input.value)) {
      throw new AppError('validation_failed', { details: [{ path: 'value', message: CUSTOM_KEY_MESSAGE }], detail: 'value' });
    }
    return this.locked(domain, async () => {
      const settings = await this.requireExternal(domain);
      const now = this.deps.clock.now();
      const { ops, indexRemovals, records } = await this.settle(domain, now);
      if (input.effectiveFrom !== undefined && input.effectiveFrom > now + MDM_MAX_EFFECTIVE_AHEAD_MS) {
        throw new AppError('validation_failed', { details: [{ path: 'effectiveFrom', message: 'must be within a year from now' }], detail: 'effectiveFrom' });
      }
      const active = records.filter((k) => effectiveStatus(k, now) === 'active');
      if (active.length >= MDM_MAX_ACTIVE_KEYS) throw new AppError('mdm_key_limit', { detail: `${active.length} active keys` });
      const value = input.value ?? generateKeyValue();
      if (input.value !== undefined && active.some((k) => sameSecret(this.open(domain, k), value))) {
        throw new AppError('conflict', { detail: 'duplicate of an own active key', message: 'This value is already an active key of this organisation.' });
      }
      const created = this.newRecord(domain, value, input.value === undefined ? 'auto' : 'custom', now, Math.max(now, input.effectiveFrom ?? now));
      await this.withUniqueValue(domain, settings.restrictOtherDomains, input.value === undefined ? [] : [value], async () => {
        await this.indexAdd(created.digest, domain);
        await this.commit(domain, [...ops, this.putOp(domain, created)], records, now);
      });
      await this.indexRemove(domain, indexRemovals);
      return { id: created.id, value, effectiveFrom: created.effectiveFrom };
    });
  }

  /** M-6: a new key replaces every active key; with `graceSeconds` the replaced keys admit that much longer. */
  async reissue(tenant: Tenant, input: { graceSeconds?: number; value?: string }): Promise<ReissueResult> {
    const domain = tenant.domain;
    if (input.value !== undefined && !CUSTOM_KEY_RE.test(input.value)) {
      throw new AppError('validation_failed', { details: [{ path: 'value', message: CUSTOM_KEY_MESSAGE }], detail: 'value' });
    }
    const grace = input.graceSeconds ?? 0;
    const outcome = await this.locked(domain, async () => {
      const settings = await this.requireExternal(domain);
      const now = this.deps.clock.now();
      const { ops, indexRemovals, records } = await this.settle(domain, now);
      const active = records.filter((k) => effectiveStatus(k, now) === 'active');
      const value = input.value ?? generateKeyValue();
      // A replaced key with the very value given gets no grace: it is the new key's value anyway.
      const sameAsNew = new Set(input.value === undefined ? [] : active.filter((k) => sameSecret(this.open(domain, k), value)).map((k) => k.id));
      const graced = grace > 0 ? active.filter((k) => !sameAsNew.has(k.id)) : [];
      if (graced.length + 1 > MDM_MAX_ACTIVE_KEYS) {
        throw new AppError('mdm_key_limit', {
          detail: `reissue with grace would hold ${graced.length + 1} active keys`,
          message: `A reissue with a grace period would leave more than ${MDM_MAX_ACTIVE_KEYS} active keys. Revoke a key first, or reissue without a grace period.`,
        });
      }
      const graceUntil = grace > 0 ? now + grace * 1000 : null;
      const created = this.newRecord(domain, value, input.value === undefined ? 'auto' : 'custom', now, now);
      for (const k of active) {
        if (graceUntil !== null && !sameAsNew.has(k.id)) {
          ops.push(this.putOp(domain, { ...k, graceUntil: Math.min(k.graceUntil ?? Infinity, graceUntil) }));
        } else {
          ops.push(this.putOp(domain, { ...k, status: 'revoked', revokedAt: now, endReason: 'reissued', graceUntil: undefined }));
          indexRemovals.push(k.digest);
        }
      }
      await this.withUniqueValue(domain, settings.restrictOtherDomains, input.value === undefined ? [] : [value], async () => {
        await this.indexAdd(created.digest, domain);
        await this.commit(domain, [...ops, this.putOp(domain, created)], records, now);
      });
      await this.indexRemove(domain, indexRemovals);
      return { created, value, replaced: active.map((k) => k.id), graceUntil, keep: [created.id, ...graced.map((k) => k.id)] };
    });
    // M-4: sessions not admitted by a key that still admits end now.
    const mobileSessionsEnded = await this.endExcept(domain, outcome.keep);
    await this.dropAdmissionsExcept(domain, outcome.keep);
    return { id: outcome.created.id, value: outcome.value, replaced: outcome.replaced, graceUntil: outcome.graceUntil, mobileSessionsEnded };
  }

  /**
   * M-12: revokes one key and ends the sessions it admitted. When no other key would admit devices right
   * now, the revocation needs `replacement`: `'new'` issues an automatic key in its place, a key id brings
   * that remaining (scheduled) key forward to admit from now on. Without it: 409 `mdm_last_key`.
   */
  async revoke(tenant: Tenant, keyId: string, replacement?: RevokeReplacement): Promise<RevokeResult> {
    const domain = tenant.domain;
    const outcome = await this.locked(domain, async () => {
      await this.requireExternal(domain);
      const now = this.deps.clock.now();
      const { ops, indexRemovals, records } = await this.settle(domain, now);
      const target = records.find((k) => k.id === keyId);
      if (!target) throw new AppError('mdm_key_not_found', { detail: 'unknown key id' });
      if (effectiveStatus(target, now) !== 'active') throw new AppError('conflict', { detail: `key ${target.status}`, message: 'This key is already revoked.' });
      const remaining = records.filter((k) => k.id !== keyId && effectiveStatus(k, now) === 'active');
      const successor = replacement !== undefined && replacement !== 'new' ? remaining.find((k) => k.id === replacement) : undefined;
      if (replacement !== undefined && replacement !== 'new' && !successor) {
        throw new AppError('validation_failed', {
          details: [{ path: 'replacement', message: 'must be "new" or the id of another active key of this organisation' }],
          detail: 'replacement',
        });
      }
      if (replacement === undefined && !remaining.some((k) => admits(k, now))) {
        const next = remaining.length ? Math.min(...remaining.map((k) => k.effectiveFrom)) : null;
        throw new AppError('mdm_last_key', {
          detail: remaining.length ? 'only scheduled keys remain' : 'last active key',
          message:
            next === null
              ? 'This is the last key: every device would be locked out. Name a replacement (a new key) to revoke it.'
              : `No other key admits devices before ${new Date(next).toISOString()}. Name a replacement (a new key, or a scheduled key to bring forward) to revoke it.`,
        });
      }
      ops.push(this.putOp(domain, { ...target, status: 'revoked', revokedAt: now, endReason: 'revoked', graceUntil: undefined }));
      indexRemovals.push(target.digest);
      let issued: IssuedKey | null = null;
      let takenOverBy: { id: string; effectiveFrom: number } | null = null;
      if (replacement === 'new') {
        const value = generateKeyValue();
        const created = this.newRecord(domain, value, 'auto', now, now);
        await this.indexAdd(created.digest, domain);
        ops.push(this.putOp(domain, created));
        issued = { id: created.id, value };
      } else if (successor) {
        const effectiveFrom = Math.min(successor.effectiveFrom, now);
        if (effectiveFrom !== successor.effectiveFrom) ops.push(this.putOp(domain, { ...successor, effectiveFrom }));
        takenOverBy = { id: successor.id, effectiveFrom };
      }
      await this.commit(domain, ops, records, now);
      await this.indexRemove(domain, indexRemovals);
      return { replacement: issued, takenOverBy };
    });
    const admissions = await this.admissionsOf(domain, keyId);
    let mobileSessionsEnded = 0;
    for (const ender of this.sessionEnders) mobileSessionsEnded += admissions.length ? await ender.endMobileSessions(domain, admissions) : 0;
    await this.dropAdmissions(domain, [keyId]);
    return { revoked: keyId, mobileSessionsEnded, ...outcome };
  }

  /** M-2: the value of a key, for the admin to paste into the MDM console (the route audits it). */
  async reveal(domain: string, keyId: string): Promise<IssuedKey & { status: KeyStatus }> {
    const now = this.deps.clock.now();
    const k = KEY_ID_RE.test(keyId) ? await this.record(domain, keyId) : null;
    if (!k) throw new AppError('mdm_key_not_found', { detail: 'unknown key id' });
    const status = effectiveStatus(k, now);
    if (status === 'revoked') throw new AppError('conflict', { detail: 'reveal of a revoked key', message: 'A revoked key cannot be read back.' });
    return { id: k.id, value: this.open(domain, k), status };
  }

  // ---------------------------------------------------------------- the check's view of the keys

  /**
   * M-11, M-14, M-6: does the presented code equal a key that admits right now? Compared in constant time
   * against every admitting key (no early exit). When nothing admits, the non-admitting keys are compared
   * too, so the failure can name the key that was tried (scheduled, past its grace, revoked, inactive).
   */
  async match(domain: string, presented: string, now: number): Promise<KeyMatch> {
    const records = await this.records(domain);
    let admitted: string | null = null;
    for (const k of records) {
      if (admits(k, now) && sameSecret(this.open(domain, k), presented) && admitted === null) admitted = k.id;
    }
    if (admitted !== null) return { admitted: true, keyId: admitted };
    for (const k of records) {
      if (admits(k, now) || !sameSecret(this.open(domain, k), presented)) continue;
      const status = effectiveStatus(k, now);
      const state =
        status === 'active' ? 'key_not_yet_effective' : status === 'inactive' ? 'key_inactive' : k.status === 'active' || k.endReason === 'grace_ended' ? 'key_grace_ended' : 'key_revoked';
      return { admitted: false, keyId: k.id, state };
    }
    return { admitted: false, keyId: null, state: 'no_key_matched' };
  }

  /**
   * M-7: the tenants other than `exceptDomain` that hold `presented` as a key admitting now, found through
   * the digest index and verified against their own records.
   */
  async holdersOf(presented: string, now: number, exceptDomain?: string): Promise<string[]> {
    const candidates = new Set<string>();
    for (const d of this.digestsOf(presented)) for (const domain of await this.deps.store.sMembers(keys.mdmKeyDigest(d))) candidates.add(domain);
    candidates.delete(exceptDomain ?? '');
    const holders: string[] = [];
    for (const domain of candidates) {
      const settings = await this.settings(domain);
      const records = settings.mode === 'external' ? await this.records(domain) : [];
      if (records.some((k) => admits(k, now) && sameSecret(this.open(domain, k), presented))) holders.push(domain);
    }
    return holders;
  }

  /** Records when a key was last presented successfully (M-13), at most once a minute per key. */
  async notePresented(domain: string, keyId: string, now: number): Promise<void> {
    // This process wrote it less than the resolution ago: nothing to read or write (the refresh hot path).
    const memoKey = `${domain}\n${keyId}`;
    if (now - (this.presentedMemo.get(memoKey) ?? -Infinity) < LAST_PRESENTED_RESOLUTION_MS) return;
    const key = keys.mdmKeyLastPresented(domain);
    const last = Number((await this.deps.store.hGet(key, keyId)) ?? 0);
    if (now - last >= LAST_PRESENTED_RESOLUTION_MS) await this.deps.store.hSet(key, { [keyId]: String(now) });
    if (this.presentedMemo.size >= PRESENTED_MEMO_MAX) this.presentedMemo.clear();
    this.presentedMemo.set(memoKey, Math.max(last, now));
  }

  // ---------------------------------------------------------------- admissions (called by the OpenID Provider)

  /**
   * The OP calls this when a mobile token request passed the check: `keyId` admitted the session
   * (grant) on `deviceId`. A grant re-admitted by another key (rotation) moves to it.
   */
  async recordAdmission(domain: string, keyId: string, admission: { deviceId: string; grantId: string; expiresAt?: number }): Promise<void> {
    const previous = await this.deps.store.hGet(keys.mdmAdmittedBy(domain), admission.grantId);
    // A refresh of a session the same key admitted before: already recorded (a grant stays on its device).
    if (previous === keyId && admission.expiresAt === undefined) return;
    const entry = JSON.stringify({ deviceId: admission.deviceId, ...(admission.expiresAt === undefined ? {} : { expiresAt: admission.expiresAt }) });
    const ops: AtomicOp[] = [
      { op: 'hSet', key: keys.mdmKeyAdmissions(domain, keyId), fields: { [admission.grantId]: entry } },
      { op: 'hSet', key: keys.mdmAdmittedBy(domain), fields: { [admission.grantId]: keyId } },
    ];
    if (previous !== null && previous !== keyId) ops.push({ op: 'hDel', key: keys.mdmKeyAdmissions(domain, previous), fields: [admission.grantId] });
    await this.deps.store.atomic(ops);
  }

  /** The OP calls this when a mobile session (grant) ends. Idempotent. */
  async forgetAdmission(domain: string, grantId: string): Promise<void> {
    const keyId = await this.deps.store.hGet(keys.mdmAdmittedBy(domain), grantId);
    const ops: AtomicOp[] = [{ op: 'hDel', key: keys.mdmAdmittedBy(domain), fields: [grantId] }];
    if (keyId !== null) ops.push({ op: 'hDel', key: keys.mdmKeyAdmissions(domain, keyId), fields: [grantId] });
    await this.deps.store.atomic(ops);
  }

  /** Which key admitted a grant (null: none, e.g. a session from before MDM sync). */
  admittedKeyOf(domain: string, grantId: string): Promise<string | null> {
    return this.deps.store.hGet(keys.mdmAdmittedBy(domain), grantId);
  }

  async admissionsOf(domain: string, keyId: string): Promise<MdmAdmission[]> {
    const raw = await this.deps.store.hGetAll(keys.mdmKeyAdmissions(domain, keyId));
    return Object.entries(raw).map(([grantId, json]) => {
      const v = JSON.parse(json) as { deviceId: string; expiresAt?: number };
      return { grantId, keyId, deviceId: v.deviceId, ...(v.expiresAt === undefined ? {} : { expiresAt: v.expiresAt }) };
    });
  }

  // ---------------------------------------------------------------- built-in MDM exception settings

  async listBuiltinExceptions(domain: string): Promise<BuiltinException[]> {
    const raw = await this.deps.store.hGetAll(keys.mdmBuiltinExceptions(domain));
    return Object.values(raw)
      .map((v) => JSON.parse(v) as BuiltinException)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  /** Built-in MDM exceptions belong to built-in MDM: refused while 3rd-party sync is on (M-1). */
  async addBuiltinException(domain: string, input: { account: string; note?: string }): Promise<BuiltinException> {
    return this.locked(domain, async () => {
      if ((await this.settings(domain)).mode === 'external') {
        throw new AppError('mdm_builtin_excluded', { detail: 'builtin exception while external' });
      }
      const key = keys.mdmBuiltinExceptions(domain);
      if ((await this.deps.store.hLen(key)) >= MDM_MAX_BUILTIN_EXCEPTIONS) {
        throw new AppError('conflict', { detail: 'builtin exception limit', message: `At most ${MDM_MAX_BUILTIN_EXCEPTIONS} exceptions can be set.` });
      }
      const entry: BuiltinException = { id: `mx_${randomBytes(9).toString('base64url')}`, account: input.account.toLowerCase(), note: input.note ?? null, createdAt: iso(this.deps.clock.now())! };
      await this.deps.store.hSet(key, { [entry.id]: JSON.stringify(entry) });
      return entry;
    });
  }

  /** Deletes one built-in MDM exception setting; 404 `mdm_builtin_exception_not_found` when there is none with this id. */
  async deleteBuiltinException(domain: string, id: string): Promise<BuiltinException> {
    const key = keys.mdmBuiltinExceptions(domain);
    const raw = /^mx_[A-Za-z0-9_-]{12}$/.test(id) ? await this.deps.store.hGet(key, id) : null;
    if (raw === null) throw new AppError('mdm_builtin_exception_not_found', { detail: 'unknown exception id' });
    await this.deps.store.hDel(key, id);
    return JSON.parse(raw) as BuiltinException;
  }

  // ---------------------------------------------------------------- internals

  private locked<T>(domain: string, fn: () => Promise<T>): Promise<T> {
    return withLock(this.deps.store, keys.mdmLock(domain), fn);
  }

  private async requireExternal(domain: string): Promise<MdmSettings> {
    const settings = await this.settings(domain);
    if (settings.mode !== 'external') throw new AppError('mdm_external_required', { detail: `mdm mode ${settings.mode}` });
    return settings;
  }

  private async records(domain: string): Promise<StoredKey[]> {
    const raw = await this.deps.store.hGetAll(keys.mdmKeys(domain));
    return Object.values(raw).map((v) => JSON.parse(v) as StoredKey);
  }

  private async record(domain: string, keyId: string): Promise<StoredKey | null> {
    const raw = await this.deps.store.hGet(keys.mdmKeys(domain), keyId);
    return raw === null ? null : (JSON.parse(raw) as StoredKey);
  }

  private open(domain: string, k: StoredKey): string {
    return this.deps.secrets.open(k.sealed, mdmKeyContext(domain, k.id));
  }

  private newRecord(domain: string, value: string, source: 'auto' | 'custom', now: number, effectiveFrom: number): StoredKey {
    const id = newKeyId();
    const pepper = this.peppers[0]!;
    return {
      id,
      sealed: this.deps.secrets.seal(value, mdmKeyContext(domain, id)),
      digest: createHmac('sha256', pepper.key).update(value, 'utf8').digest('base64url'),
      pepperId: pepper.id,
      source,
      status: 'active',
      createdAt: now,
      effectiveFrom,
    };
  }

  private putOp(domain: string, k: StoredKey): AtomicOp {
    return { op: 'hSet', key: keys.mdmKeys(domain), fields: { [k.id]: JSON.stringify(k) } };
  }

  /** The value's digest under every pepper (the first writes; older ones still find older entries). */
  private digestsOf(value: string): string[] {
    return this.peppers.map((p) => createHmac('sha256', p.key).update(value, 'utf8').digest('base64url'));
  }

  /** Rewrites keys whose grace ended as revoked (their index entries go too). Runs under the tenant lock. */
  private async settle(domain: string, now: number): Promise<{ ops: AtomicOp[]; indexRemovals: string[]; records: StoredKey[] }> {
    const records = await this.records(domain);
    const ops: AtomicOp[] = [];
    const indexRemovals: string[] = [];
    for (const k of records) {
      if (k.status === 'active' && effectiveStatus(k, now) === 'revoked') {
        ops.push(this.putOp(domain, { ...k, status: 'revoked', revokedAt: k.graceUntil, endReason: 'grace_ended' }));
        indexRemovals.push(k.digest);
      }
    }
    return { ops, indexRemovals, records };
  }

  /** One MULTI for the tenant's writes, with the history trimmed to MDM_KEPT_HISTORY ended keys. */
  private async commit(domain: string, ops: AtomicOp[], before: StoredKey[], now: number): Promise<void> {
    const after = new Map(before.map((k) => [k.id, k]));
    for (const op of ops) {
      if (op.op === 'hSet' && op.key === keys.mdmKeys(domain)) for (const [id, json] of Object.entries(op.fields)) after.set(id, JSON.parse(json) as StoredKey);
    }
    const ended = [...after.values()].filter((k) => effectiveStatus(k, now) !== 'active').sort((a, b) => (b.revokedAt ?? 0) - (a.revokedAt ?? 0));
    const dropped = ended.slice(MDM_KEPT_HISTORY).map((k) => k.id);
    if (dropped.length) {
      ops.push({ op: 'hDel', key: keys.mdmKeys(domain), fields: dropped });
      ops.push({ op: 'hDel', key: keys.mdmKeyLastPresented(domain), fields: dropped });
      for (const id of dropped) ops.push({ op: 'del', key: keys.mdmKeyAdmissions(domain, id) });
    }
    await this.deps.store.atomic(ops);
  }

  private async indexAdd(digest: string, domain: string): Promise<void> {
    await this.deps.store.sAdd(keys.mdmKeyDigest(digest), domain);
  }

  /** Drops the domain from these digests' entries unless another of its active keys still has that digest. */
  private async indexRemove(domain: string, digests: string[]): Promise<void> {
    if (!digests.length) return;
    const now = this.deps.clock.now();
    const live = new Set((await this.records(domain)).filter((k) => effectiveStatus(k, now) === 'active').map((k) => k.digest));
    for (const d of new Set(digests)) if (!live.has(d)) await this.deps.store.sRem(keys.mdmKeyDigest(d), domain);
  }

  /**
   * M-7: runs `write` only if the values may be used by `domain` — no other tenant restricting other
   * domains holds one of them, and, when `domain` itself restricts, no other tenant holds one at all.
   * Serialised across tenants by one short global lock, so two tenants cannot race past each other.
   * (Without a restriction on either side a value may be shared, M-8: refusing would tell a stranger
   * that someone uses it.)
   */
  private async withUniqueValue(domain: string, restricting: boolean, values: string[], write: () => Promise<void>): Promise<void> {
    if (!values.length) {
      await write();
      return;
    }
    await withLock(this.deps.store, keys.mdmKeyIndexLock(), async () => {
      const now = this.deps.clock.now();
      for (const value of values) {
        for (const holder of await this.holdersOfAnyActive(value, now, domain)) {
          const holderSettings = await this.settings(holder.domain);
          const holderRestricts = holderSettings.mode === 'external' && holderSettings.restrictOtherDomains;
          if (restricting || holderRestricts) {
            throw new AppError('mdm_key_not_unique', {
              detail: restricting ? 'an active key is used by another tenant' : 'value is a key of a tenant restricting other domains',
            });
          }
        }
      }
      await write();
    });
  }

  /** Like holdersOf, but any active key counts (scheduled, in grace): uniqueness is about the value. Stale index entries are dropped. */
  private async holdersOfAnyActive(value: string, now: number, exceptDomain: string): Promise<Array<{ domain: string }>> {
    const holders: Array<{ domain: string }> = [];
    for (const digest of this.digestsOf(value)) {
      for (const domain of await this.deps.store.sMembers(keys.mdmKeyDigest(digest))) {
        if (domain === exceptDomain || holders.some((h) => h.domain === domain)) continue;
        const settings = await this.settings(domain);
        const holds = settings.mode === 'external' && (await this.records(domain)).some((k) => effectiveStatus(k, now) === 'active' && sameSecret(this.open(domain, k), value));
        if (holds) holders.push({ domain });
        else await this.deps.store.sRem(keys.mdmKeyDigest(digest), domain);
      }
    }
    return holders;
  }

  private async liveSessions(domain: string, keyId: string, now: number): Promise<number> {
    const key = keys.mdmKeyAdmissions(domain, keyId);
    const raw = await this.deps.store.hGetAll(key);
    const isLive = this.deps.isGrantLive;
    const ended = await Promise.all(
      Object.entries(raw).map(async ([grantId, json]) => {
        const e = (JSON.parse(json) as { expiresAt?: number }).expiresAt;
        return (e !== undefined && e <= now) || (isLive !== undefined && !(await isLive(grantId))) ? grantId : null;
      }),
    );
    const expired = ended.filter((g): g is string => g !== null);
    if (expired.length) {
      await this.deps.store.atomic([
        { op: 'hDel', key, fields: expired },
        { op: 'hDel', key: keys.mdmAdmittedBy(domain), fields: expired },
      ]);
    }
    return Object.keys(raw).length - expired.length;
  }

  private async endExcept(domain: string, keep: string[]): Promise<number> {
    let ended = 0;
    for (const ender of this.sessionEnders) ended += await ender.endMobileSessionsExcept(domain, keep);
    return ended;
  }

  /** After M-4's ending: only sessions admitted by the kept keys are left. */
  private async dropAdmissionsExcept(domain: string, keep: string[]): Promise<void> {
    const ids = (await this.records(domain)).map((k) => k.id).filter((id) => !keep.includes(id));
    await this.dropAdmissions(domain, ids);
    const orphans = Object.entries(await this.deps.store.hGetAll(keys.mdmAdmittedBy(domain)))
      .filter(([, keyId]) => !keep.includes(keyId))
      .map(([grantId]) => grantId);
    if (orphans.length) await this.deps.store.hDel(keys.mdmAdmittedBy(domain), ...orphans);
  }

  /** Forgets the admissions of keys whose sessions were just ended. */
  private async dropAdmissions(domain: string, keyIds: string[]): Promise<void> {
    for (const keyId of keyIds) {
      const grants = Object.keys(await this.deps.store.hGetAll(keys.mdmKeyAdmissions(domain, keyId)));
      const ops: AtomicOp[] = [{ op: 'del', key: keys.mdmKeyAdmissions(domain, keyId) }];
      if (grants.length) ops.push({ op: 'hDel', key: keys.mdmAdmittedBy(domain), fields: grants });
      await this.deps.store.atomic(ops);
    }
  }
}
