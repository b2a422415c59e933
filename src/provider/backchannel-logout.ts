import { randomUUID } from 'node:crypto';
import type { ClientModel, Provider } from 'oidc-provider';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

/** The `events` member of a logout token (OpenID Connect Back-Channel Logout 1.0, §2.4). */
export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** One service to tell that a member's OP session (`sid`) or grant (no `sid`) ended. */
export interface LogoutNotice {
  clientId: string;
  /** The OP's subject (`{domain}:{memberId}`). */
  sub: string;
  /** The session id the OP gave this client (its ID tokens' `sid`); absent when a grant ended without a session. */
  sid?: string;
}

/** How a delivery ended, the `result` label of idpb_backchannel_logout_total. */
export type BackchannelResult = 'delivered' | 'retried' | 'failed' | 'dropped';

export interface BackchannelSettings {
  /** Deliveries at once, over every client (each is one POST). */
  maxInFlight: number;
  /** Attempts per notice, the first included. */
  maxAttempts: number;
  /** Pause before the 2nd attempt; doubled for each further one. */
  backoffMs: number;
  /** Notices waiting beyond this are dropped (counted), so a dead receiver cannot grow memory. */
  maxQueued: number;
}

export const BACKCHANNEL_DEFAULTS: BackchannelSettings = { maxInFlight: 4, maxAttempts: 3, backoffMs: 1000, maxQueued: 10_000 };

type Fetch = (url: string, init: { method: string; headers: Record<string, string>; body: string }) => Promise<Response>;

interface Job {
  notice: LogoutNotice;
  attempt: number;
}

/** The parts of an OP `Session` row that name who to tell. */
interface SessionRow {
  accountId?: string;
  authorizations?: Record<string, { sid?: string }>;
}

/** Every client of a stored OP session, with the `sid` it knows the session by. */
export function noticesOfSession(raw: string | null): LogoutNotice[] {
  if (raw === null) return [];
  const row = JSON.parse(raw) as SessionRow;
  if (!row.accountId || !row.authorizations) return [];
  return Object.entries(row.authorizations).map(([clientId, a]) => ({ clientId, sub: row.accountId!, ...(a.sid ? { sid: a.sid } : {}) }));
}

/**
 * OpenID Connect Back-Channel Logout 1.0 for the OP's service clients that register a
 * `backchannel_logout_uri`. Whatever ends an OP session or grant (op-revocation.ts) hands its notices to
 * `notify`, which returns at once: the logout token is signed with the OP's keys (oidc-provider's own
 * `IdToken` model, `typ: logout+jwt`, as its end_session action does) and POSTed from a small in-process
 * queue — at most `maxInFlight` at once, `maxAttempts` tries with doubling backoff, each POST bounded by
 * the outbound client's timeouts and policy — so a slow or dead receiver never holds a user's logout page.
 * Every outcome is counted in idpb_backchannel_logout_total. The queue is per process: a notice still
 * waiting when the process stops is lost (the service's own session then ends with its tokens).
 */
export class BackchannelLogout {
  private readonly waiting: Job[] = [];
  private inFlight = 0;
  private readonly timers = new Set<NodeJS.Timeout>();
  private idleWaiters: Array<() => void> = [];
  private closed = false;

  constructor(
    private readonly deps: { provider: Provider; fetch: Fetch; metrics: Metrics; logger: Logger; settings?: Partial<BackchannelSettings> },
    private readonly settings: BackchannelSettings = { ...BACKCHANNEL_DEFAULTS, ...deps.settings },
  ) {
    // RP-initiated logout (oidc-provider's end_session) would sign and POST itself and make the user's
    // page wait for every service: its deliveries join this queue instead (this provider's Client class only).
    const queue = (notice: LogoutNotice): void => this.notify([notice]);
    deps.provider.Client.prototype.backchannelLogout = function (this: ClientModel, sub: string, sid: string | undefined): Promise<void> {
      queue({ clientId: this.clientId, sub, ...(sid ? { sid } : {}) });
      return Promise.resolve();
    };
  }

  /** Queues logout tokens for these notices (duplicates of one client, sub and sid sent once); never waits for a delivery. */
  notify(notices: readonly LogoutNotice[]): void {
    if (this.closed) return;
    const seen = new Set<string>();
    for (const notice of notices) {
      const id = `${notice.clientId}\n${notice.sub}\n${notice.sid ?? ''}`;
      if (seen.has(id)) continue;
      seen.add(id);
      if (this.waiting.length >= this.settings.maxQueued) {
        this.deps.metrics.backchannelLogout.inc({ result: 'dropped' });
        continue;
      }
      this.waiting.push({ notice, attempt: 1 });
      // Free slots take notices at once: only those that must wait count against maxQueued.
      this.pump();
    }
  }

  /** Resolves when nothing is waiting, retrying or being sent (tests; a draining process). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Waits for the queue to empty, at most `ms`; then drops what is left (process shutdown). */
  async drain(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.idle(), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
    clearTimeout(timer);
    this.close();
  }

  /** Stops pending retries (process shutdown). */
  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.waiting.length = 0;
    this.settle();
  }

  private isIdle(): boolean {
    return this.waiting.length === 0 && this.inFlight === 0 && this.timers.size === 0;
  }

  private settle(): void {
    if (!this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private pump(): void {
    while (this.inFlight < this.settings.maxInFlight && this.waiting.length > 0) {
      const job = this.waiting.shift()!;
      this.inFlight++;
      void this.deliver(job).finally(() => {
        this.inFlight--;
        this.pump();
        this.settle();
      });
    }
  }

  private async deliver(job: Job): Promise<void> {
    const { notice } = job;
    let target: { uri: string; token: string } | null;
    try {
      target = await this.logoutToken(notice);
    } catch (err) {
      // No token can be made (the client's metadata is unusable): retrying would not help.
      this.deps.logger.warn({ err, clientId: notice.clientId }, 'back-channel logout token not issued');
      this.deps.metrics.backchannelLogout.inc({ result: 'failed' });
      return;
    }
    if (!target) return;
    try {
      const res = await this.deps.fetch(target.uri, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'cache-control': 'no-cache' },
        body: new URLSearchParams({ logout_token: target.token }).toString(),
      });
      await res.body?.cancel().catch(() => undefined);
      // §2.8: 200 OK (204 accepted as oidc-provider does); anything else is a failure.
      if (res.status !== 200 && res.status !== 204) throw new Error(`HTTP ${res.status}`);
      this.deps.metrics.backchannelLogout.inc({ result: 'delivered' });
    } catch (err) {
      const reason = err instanceof Error ? err.message : 'unknown';
      if (job.attempt >= this.settings.maxAttempts || this.closed) {
        this.deps.logger.warn({ clientId: notice.clientId, attempts: job.attempt, reason }, 'back-channel logout not delivered');
        this.deps.metrics.backchannelLogout.inc({ result: 'failed' });
        return;
      }
      this.deps.metrics.backchannelLogout.inc({ result: 'retried' });
      const delay = this.settings.backoffMs * 2 ** (job.attempt - 1);
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.waiting.push({ notice, attempt: job.attempt + 1 });
        this.pump();
        this.settle();
      }, delay);
      timer.unref();
      this.timers.add(timer);
    }
  }

  /** The client's back-channel URI and a fresh logout token for it; null when the client registered none. */
  private async logoutToken(notice: LogoutNotice): Promise<{ uri: string; token: string } | null> {
    const { provider } = this.deps;
    const client = await provider.Client.find(notice.clientId);
    const uri = client?.backchannelLogoutUri;
    if (!client || !uri) return null;
    // §2.6: a client that requires `sid` gets no token without one (a grant that ended outside a session).
    if (client.backchannelLogoutSessionRequired && !notice.sid) return null;
    const token = new provider.IdToken({ sub: notice.sub }, { client, ctx: undefined });
    token.mask = { sub: null };
    token.set('events', { [BACKCHANNEL_LOGOUT_EVENT]: {} });
    token.set('jti', randomUUID());
    if (notice.sid) token.set('sid', notice.sid);
    return { uri, token: await token.issue({ use: 'logout' }) };
  }
}
