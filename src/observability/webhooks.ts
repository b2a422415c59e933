import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import type { Clock } from '../domain/clock.js';
import type { SecretBox } from '../domain/secret-box.js';
import { AppError } from '../errors/index.js';
import { OutboundError, type OutboundHttp } from '../sso/oauth/outbound-http.js';
import { findRefusal, type OutboundPolicy } from '../sso/oauth/outbound-policy.js';
import { keys, type KeyValueStore } from '../store/index.js';
import { WEBHOOK_FAILED_MAX } from '../store/keys.js';
import type { EventLog, TenantEvent } from './events.js';
import type { Logger } from './logger.js';

/** `events.webhook` in the config. */
export interface WebhookSettings {
  pollMs: number;
  batchSize: number;
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  leaseMs: number;
}

export interface WebhookView {
  url: string;
  createdAt: string;
  /** The id of the last event delivered (or given up on); null before the first. */
  cursor: string | null;
  /** Failed attempts of the batch being delivered now. */
  attempts: number;
  nextAttemptAt: string | null;
  lastError: string | null;
}

export interface FailedDelivery {
  /** The `webhook-id` the delivery was sent with. */
  id: string;
  eventIds: string[];
  attempts: number;
  lastError: string;
  failedAt: string;
}

export type DeliveryOutcome = 'idle' | 'busy' | 'waiting' | 'delivered' | 'retrying' | 'failed';

const URL_MAX = 2000;
const ERROR_MAX = 200;
/** Tenants one worker delivers at the same time (a slow receiver holds up only its own lane). */
const ROUND_CONCURRENCY = 16;

/**
 * The Standard Webhooks signature (standardwebhooks.com): `v1,` and the base64 HMAC-SHA256, keyed by
 * the secret's bytes (the base64 after `whsec_`), of `<webhook-id>.<webhook-timestamp>.<body>`.
 */
export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

/**
 * Each tenant's signed webhook (docs/spec.md §11 "Events out"). The queue is the tenant's events
 * stream itself (bounded by the retention) with a delivery cursor in the store: every worker runs
 * `tick()`, and a lease per tenant lets one of them at a time POST the next batch after the cursor,
 * so events go out in order. A batch that fails is retried with exponential backoff (attempts and the
 * next time in the store, by the injected clock); after `maxAttempts` it is recorded as a failed
 * delivery, which an administrator can list and redeliver, and the cursor moves on. Logins only ever
 * append to the stream: nothing here runs in a request but the admin routes.
 */
export class Webhooks {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;
  private readonly worker = randomUUID();

  constructor(
    private readonly deps: {
      store: KeyValueStore;
      clock: Clock;
      logger: Logger;
      events: EventLog;
      secrets: SecretBox;
      policy: OutboundPolicy;
      outbound: OutboundHttp;
      allowHttp: boolean;
      settings: WebhookSettings;
    },
  ) {}

  // -------------------------------------------------------------------------------------------------
  // Administration

  /** Sets (or replaces) the tenant's webhook; a new secret each time, returned once. Delivery starts with the next event. */
  async set(domain: string, rawUrl: string): Promise<{ url: string; secret: string }> {
    const url = await this.checkUrl(rawUrl);
    const secret = `whsec_${randomBytes(24).toString('base64')}`;
    const cursor = await this.deps.events.newestId(domain);
    const { store, clock, secrets } = this.deps;
    await store.atomic([
      { op: 'del', key: keys.webhook(domain) },
      { op: 'hSet', key: keys.webhook(domain), fields: { url, secret: secrets.seal(secret, `webhook:${domain}`), createdAt: new Date(clock.now()).toISOString() } },
      { op: 'del', key: keys.webhookState(domain) },
      { op: 'hSet', key: keys.webhookState(domain), fields: { cursor: cursor ?? '', attempts: '0', nextAt: '0', lastError: '' } },
    ]);
    await store.sAdd(keys.webhookDomains(), domain);
    return { url, secret };
  }

  async get(domain: string): Promise<WebhookView | null> {
    const [hook, state] = await Promise.all([this.deps.store.hGetAll(keys.webhook(domain)), this.deps.store.hGetAll(keys.webhookState(domain))]);
    if (!hook.url) return null;
    const nextAt = Number(state.nextAt ?? 0);
    return {
      url: hook.url,
      createdAt: hook.createdAt ?? '',
      cursor: state.cursor || null,
      attempts: Number(state.attempts ?? 0),
      nextAttemptAt: nextAt ? new Date(nextAt).toISOString() : null,
      lastError: state.lastError || null,
    };
  }

  /** Removes the webhook, its state and its failed deliveries. */
  async remove(domain: string): Promise<boolean> {
    const existed = (await this.get(domain)) !== null;
    await this.deps.store.atomic([
      { op: 'del', key: keys.webhook(domain) },
      { op: 'del', key: keys.webhookState(domain) },
      { op: 'del', key: keys.webhookFailed(domain) },
    ]);
    await this.deps.store.sRem(keys.webhookDomains(), domain);
    return existed;
  }

  /** The failed deliveries, oldest first. */
  async failed(domain: string): Promise<FailedDelivery[]> {
    const all = Object.values(await this.deps.store.hGetAll(keys.webhookFailed(domain))).map((v) => JSON.parse(v) as FailedDelivery);
    return all.sort((a, b) => (a.failedAt < b.failedAt ? -1 : a.failedAt > b.failedAt ? 1 : a.id < b.id ? -1 : 1));
  }

  /** Sends a failed delivery again, now, with the same webhook-id; on success it leaves the list. */
  async redeliver(domain: string, id: string): Promise<{ delivered: boolean; error?: string }> {
    const raw = await this.deps.store.hGet(keys.webhookFailed(domain), id);
    if (!raw) throw new AppError('not_found', { message: 'No such failed delivery.' });
    const hook = await this.hook(domain);
    if (!hook) throw new AppError('webhook_not_configured');
    const failed = JSON.parse(raw) as FailedDelivery;
    const events = await this.deps.events.byIds(domain, failed.eventIds);
    const error = events.length ? await this.post(hook, domain, failed.id, events) : null;
    if (error) {
      await this.deps.store.hSet(keys.webhookFailed(domain), { [id]: JSON.stringify({ ...failed, attempts: failed.attempts + 1, lastError: error }) });
      return { delivered: false, error };
    }
    await this.deps.store.hDel(keys.webhookFailed(domain), id);
    return { delivered: true };
  }

  /** https (http outside production), no credentials, a host the outbound policy admits. */
  private async checkUrl(raw: string): Promise<string> {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new AppError('webhook_url_refused', { detail: 'not a URL' });
    }
    if (raw.length > URL_MAX) throw new AppError('webhook_url_refused', { detail: 'URL too long' });
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && this.deps.allowHttp)) throw new AppError('webhook_url_refused', { detail: `scheme ${url.protocol}` });
    if (url.username || url.password) throw new AppError('webhook_url_refused', { detail: 'credentials in the URL' });
    try {
      await this.deps.policy.checkUrl(url, AbortSignal.timeout(5000));
    } catch (err) {
      const refusal = findRefusal(err);
      throw new AppError('webhook_url_refused', { detail: refusal ? `outbound policy: ${refusal.refusal}` : 'host check failed', cause: err });
    }
    return url.toString();
  }

  // -------------------------------------------------------------------------------------------------
  // Delivery

  /** Starts the background loop (every `pollMs`); ticks never overlap. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    const loop = (): void => {
      if (this.stopped) return;
      this.running = this.tick()
        .catch((err: unknown) => this.deps.logger.warn({ err }, 'webhook delivery round failed'))
        .finally(() => {
          this.running = undefined;
          if (!this.stopped) {
            this.timer = setTimeout(loop, this.deps.settings.pollMs);
            this.timer.unref();
          }
        });
    };
    this.timer = setTimeout(loop, this.deps.settings.pollMs);
    this.timer.unref();
  }

  /** Stops the loop and waits for a round in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** One round: every tenant with a webhook, each under its lease, at most ROUND_CONCURRENCY at a time. */
  async tick(): Promise<void> {
    const domains = await this.deps.store.sMembers(keys.webhookDomains());
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < domains.length) {
        const d = domains[next++]!;
        await this.deliverTenant(d).catch((err: unknown) => this.deps.logger.warn({ err, domain: d }, 'webhook delivery failed'));
      }
    };
    await Promise.all(Array.from({ length: Math.min(ROUND_CONCURRENCY, domains.length) }, lane));
  }

  /** Delivers the tenant's pending events, batch after batch, while they succeed (at most 10 batches a round). */
  async deliverTenant(domain: string): Promise<DeliveryOutcome> {
    const { store, settings } = this.deps;
    const lease = keys.webhookLease(domain);
    const token = `${this.worker}:${randomUUID()}`;
    if (!(await store.set(lease, token, { nx: true, ttlMs: settings.leaseMs }))) return 'busy';
    try {
      let outcome: DeliveryOutcome = 'idle';
      for (let i = 0; i < 10; i++) {
        const batch = await this.deliverBatch(domain);
        // A round that delivered (or gave up on) batches says so, though it ends with nothing left.
        if (batch !== 'idle' || outcome === 'idle') outcome = batch;
        if (batch !== 'delivered' && batch !== 'failed') break;
        // Renewed only while it is still ours (compare-and-renew); a lease lost meanwhile ends the round.
        if (!(await store.expireIfEquals(lease, token, settings.leaseMs))) break;
      }
      return outcome;
    } finally {
      await store.delIfEquals(lease, token);
    }
  }

  private async hook(domain: string): Promise<{ url: string; secret: string } | null> {
    const h = await this.deps.store.hGetAll(keys.webhook(domain));
    if (!h.url || !h.secret) return null;
    return { url: h.url, secret: this.deps.secrets.open(h.secret, `webhook:${domain}`) };
  }

  private async deliverBatch(domain: string): Promise<DeliveryOutcome> {
    const { store, clock, settings } = this.deps;
    const hook = await this.hook(domain);
    if (!hook) return 'idle';
    const state = await store.hGetAll(keys.webhookState(domain));
    const now = clock.now();
    if (Number(state.nextAt ?? 0) > now) return 'waiting';
    const { events, lastId } = await this.deps.events.read(domain, state.cursor || undefined, settings.batchSize);
    if (!lastId) return 'idle';
    if (events.length === 0) {
      await store.hSet(keys.webhookState(domain), { cursor: lastId });
      return 'delivered';
    }
    const id = `msg_${events[0]!.id}_${lastId}`;
    const error = await this.post(hook, domain, id, events);
    if (!error) {
      await store.hSet(keys.webhookState(domain), { cursor: lastId, attempts: '0', nextAt: '0', lastError: '' });
      return 'delivered';
    }
    const attempts = Number(state.attempts ?? 0) + 1;
    if (attempts < settings.maxAttempts) {
      const wait = Math.min(settings.backoffMaxMs, settings.backoffBaseMs * 2 ** (attempts - 1));
      await store.hSet(keys.webhookState(domain), { attempts: String(attempts), nextAt: String(now + wait), lastError: error });
      this.deps.logger.info({ domain, webhookId: id, attempts, retryInMs: wait, error }, 'webhook delivery failed; will retry');
      return 'retrying';
    }
    const failed: FailedDelivery = { id, eventIds: events.map((e) => e.id), attempts, lastError: error, failedAt: new Date(now).toISOString() };
    const keep = (await store.hLen(keys.webhookFailed(domain))) < WEBHOOK_FAILED_MAX;
    await store.atomic([
      ...(keep ? [{ op: 'hSet' as const, key: keys.webhookFailed(domain), fields: { [id]: JSON.stringify(failed) } }] : []),
      { op: 'hSet', key: keys.webhookState(domain), fields: { cursor: lastId, attempts: '0', nextAt: '0', lastError: error } },
    ]);
    this.deps.logger.warn({ domain, webhookId: id, attempts, events: events.length, kept: keep, error }, 'webhook delivery given up; recorded as failed');
    return 'failed';
  }

  /** POSTs one signed batch; null on a 2xx, else a short reason (no body of the receiver's). */
  private async post(hook: { url: string; secret: string }, domain: string, id: string, events: TenantEvent[]): Promise<string | null> {
    const timestamp = Math.floor(this.deps.clock.now() / 1000);
    const body = JSON.stringify({ type: 'events', domain, events });
    try {
      const res = await this.deps.outbound.fetch(hook.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'webhook-id': id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signWebhook(hook.secret, id, timestamp, body),
          'user-agent': 'idp-bridge-webhooks/1',
        },
        body,
      });
      return res.status >= 200 && res.status < 300 ? null : `HTTP ${res.status}`;
    } catch (err) {
      // The kind of failure only (unreachable, timeout, redirect refused …): the detail may name internal addresses.
      this.deps.logger.info({ err, domain, webhookId: id }, 'webhook POST failed');
      return (err instanceof OutboundError ? err.failure : 'error').slice(0, ERROR_MAX);
    }
  }
}
