import type { Clock } from '../domain/clock.js';
import type { Member } from '../domain/member.js';
import type { MemberRepository } from '../domain/members.js';
import { DUMMY_PASSWORD_HASH, verifyPassword } from '../domain/passwords.js';
import type { Tenant } from '../domain/tenant.js';
import { AppError } from '../errors/index.js';
import { digestForKey, keys, type KeyValueStore } from '../store/index.js';

/** Lockout: this many failed attempts for one account within LOCKOUT_WINDOW_MS lock it … */
export const LOCKOUT_MAX_FAILURES = 5;
/** … until the oldest of those failures is this old. */
export const LOCKOUT_WINDOW_MS = 15 * 60_000;

/** Longer passwords never match (the form's body limit keeps them small anyway). */
export const MAX_PASSWORD_LENGTH = 1024;
const MAX_ACCOUNT_LENGTH = 254;

/**
 * Private reasons of a refused password login; they reach the log and the audit trail, never the
 * page. The page says only `invalid_credentials` (or `sso_enabled` while SSO is on) whatever the
 * reason, so it does not reveal which accounts exist.
 */
export type PasswordLoginReason =
  | 'unknown_account'
  | 'bad_password'
  | 'no_password'
  | 'account_locked'
  | 'member_not_active'
  | 'sso_enabled'
  | 'break_glass_disabled';

export type PasswordLoginOutcome =
  | {
      ok: true;
      member: Member;
      /** S-23: the super admin signed in with a password while SSO is on. */
      breakGlass: boolean;
    }
  | {
      ok: false;
      /** The public code to answer with. */
      code: 'invalid_credentials' | 'account_locked' | 'member_not_active' | 'sso_enabled';
      /** The private reason, for the log and the audit trail. */
      reason: PasswordLoginReason;
      /** Set when the account names a member (for the audit trail only). */
      memberId?: string;
      /** This failure was the one that locked the account. */
      lockedNow?: boolean;
    };

/** The lower-cased, trimmed account, as accounts are compared case-insensitively (docs/spec.md §2). */
export function normalizeAccount(raw: string): string {
  return raw.trim().normalize('NFC').toLowerCase();
}

/** The AppError a refused outcome answers with, tagged with its tenant and private reason. */
export function refusalError(tenant: Tenant, outcome: Extract<PasswordLoginOutcome, { ok: false }>): AppError {
  const err = new AppError(outcome.code, { reason: outcome.reason, detail: `password login refused: ${outcome.reason}` });
  err.tenantDomain = tenant.domain;
  return err;
}

/**
 * ID/password login (S-4 for tenants without SSO; S-23 break-glass for the super admin).
 *
 * - Timing: an unknown account, or a member with no password, is verified against
 *   DUMMY_PASSWORD_HASH, so every attempt that is not locked costs one scrypt.
 * - Lockout: failures are kept per (tenant, account) — for unknown accounts too, so the lockout
 *   itself does not reveal which accounts exist — as a capped list of the injected clock's
 *   timestamps. With LOCKOUT_MAX_FAILURES failures in the last LOCKOUT_WINDOW_MS the account is
 *   locked (429 `account_locked`; the password is not even checked, so the right one does not get
 *   in either) until the oldest of them leaves the window. A success clears the list, so only
 *   consecutive failures count. The Redis TTL only collects garbage; the rule runs on the clock.
 * - Status: only `in_use` members get in, and `member_not_active` is said only after the right
 *   password, so a wrong password never reveals a member's status.
 * - While SSO is on every refusal is 409 `sso_enabled` — a wrong password, an unknown account and a
 *   normal member alike — so the break-glass path reveals neither who the super admin is nor
 *   whether a guessed password was right. Only the super admin, with the right password and the
 *   tenant's `superAdminBreakGlass` on, gets in.
 */
export class PasswordLogin {
  constructor(
    private readonly members: MemberRepository,
    private readonly store: KeyValueStore,
    private readonly clock: Clock,
  ) {}

  async login(tenant: Tenant, rawAccount: string, password: string): Promise<PasswordLoginOutcome> {
    const account = normalizeAccount(rawAccount);
    if (await this.isLocked(tenant, account)) return { ok: false, code: 'account_locked', reason: 'account_locked' };

    const member = account.length > 0 && account.length <= MAX_ACCOUNT_LENGTH ? await this.members.findByAccount(tenant.domain, account) : null;
    const stored = member?.passwordHash;
    // Always one scrypt, whether or not there is anything to compare with.
    const matches = await verifyPassword(password, stored ?? DUMMY_PASSWORD_HASH);
    const ok = matches && stored !== undefined && password.length <= MAX_PASSWORD_LENGTH;

    if (!ok || !member) {
      const lockedNow = await this.recordFailure(tenant, account);
      return {
        ok: false,
        code: tenant.sso.enabled ? 'sso_enabled' : 'invalid_credentials',
        reason: !member ? 'unknown_account' : stored === undefined ? 'no_password' : 'bad_password',
        memberId: member?.id,
        lockedNow,
      };
    }
    await this.clearFailures(tenant, account);

    let breakGlass = false;
    if (tenant.sso.enabled) {
      if (member.role !== 'super_admin') return { ok: false, code: 'sso_enabled', reason: 'sso_enabled', memberId: member.id };
      if (!tenant.superAdminBreakGlass) return { ok: false, code: 'sso_enabled', reason: 'break_glass_disabled', memberId: member.id };
      breakGlass = true;
    }
    if (member.status !== 'in_use') return { ok: false, code: 'member_not_active', reason: 'member_not_active', memberId: member.id };
    return { ok: true, member, breakGlass };
  }

  /**
   * Checks a signed-in member's current password (password change), with the same lockout and
   * failure counting as the sign-in form, so a stolen session cannot be used to guess it.
   */
  async verifyCurrentPassword(tenant: Tenant, member: Member, password: string): Promise<void> {
    if (await this.isLocked(tenant, member.account)) throw refusalError(tenant, { ok: false, code: 'account_locked', reason: 'account_locked' });
    const stored = member.passwordHash;
    const ok = (await verifyPassword(password, stored ?? DUMMY_PASSWORD_HASH)) && stored !== undefined && password.length <= MAX_PASSWORD_LENGTH;
    if (!ok) {
      await this.recordFailure(tenant, member.account);
      throw refusalError(tenant, { ok: false, code: 'invalid_credentials', reason: stored === undefined ? 'no_password' : 'bad_password' });
    }
    await this.clearFailures(tenant, member.account);
  }

  async isLocked(tenant: Tenant, account: string): Promise<boolean> {
    const recent = await this.store.lRange(this.failureKey(tenant, account), 0, LOCKOUT_MAX_FAILURES - 1);
    const since = this.clock.now() - LOCKOUT_WINDOW_MS;
    return recent.filter((t) => Number(t) > since).length >= LOCKOUT_MAX_FAILURES;
  }

  /** Records one failure; true when it locked the account. */
  private async recordFailure(tenant: Tenant, account: string): Promise<boolean> {
    const key = this.failureKey(tenant, account);
    // LPUSH + LTRIM in one MULTI: concurrent failures all count; only the newest few matter.
    await this.store.pushCapped(key, String(this.clock.now()), LOCKOUT_MAX_FAILURES);
    await this.store.expire(key, LOCKOUT_WINDOW_MS + 60_000);
    return this.isLocked(tenant, account);
  }

  private async clearFailures(tenant: Tenant, account: string): Promise<void> {
    await this.store.del(this.failureKey(tenant, account));
  }

  private failureKey(tenant: Tenant, account: string): string {
    return keys.passwordFailures(tenant.domain, digestForKey(normalizeAccount(account)));
  }
}
