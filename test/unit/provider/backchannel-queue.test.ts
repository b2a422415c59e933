import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Provider } from 'oidc-provider';
import { BackchannelLogout } from '../../../src/provider/backchannel-logout.js';
import { createLogger } from '../../../src/observability/logger.js';
import { Metrics } from '../../../src/observability/metrics.js';

/**
 * The delivery queue alone: an oidc-provider stand-in that knows two clients and "signs" a readable
 * token, and a fetch the test answers by hand. Token signing itself is covered by the integration test
 * (test/integration/provider/backchannel-logout.test.ts), against the real OP and its JWKS.
 */
function fakeProvider(): Provider {
  const clients: Record<string, { clientId: string; backchannelLogoutUri?: string; backchannelLogoutSessionRequired?: boolean }> = {
    a: { clientId: 'a', backchannelLogoutUri: 'https://a.example/bc' },
    strict: { clientId: 'strict', backchannelLogoutUri: 'https://strict.example/bc', backchannelLogoutSessionRequired: true },
    none: { clientId: 'none' },
  };
  class IdToken {
    mask = {};
    private readonly claims: Record<string, unknown>;
    constructor(available: Record<string, unknown>) {
      this.claims = { ...available };
    }
    set(k: string, v: unknown): void {
      this.claims[k] = v;
    }
    issue(): Promise<string> {
      return Promise.resolve(JSON.stringify(this.claims));
    }
  }
  return { Client: { prototype: {}, find: (id: string) => Promise.resolve(clients[id]) }, IdToken } as unknown as Provider;
}

function harness(settings: Partial<{ maxInFlight: number; maxAttempts: number; backoffMs: number; maxQueued: number }>) {
  const calls: Array<{ url: string; token: Record<string, unknown>; answer: (status: number) => void }> = [];
  let arrived: (() => void) | null = null;
  const fetch = (url: string, init: { body: string }): Promise<Response> =>
    new Promise((resolve) => {
      const token = JSON.parse(new URLSearchParams(init.body).get('logout_token')!) as Record<string, unknown>;
      calls.push({ url, token, answer: (status) => resolve(new Response(null, { status })) });
      arrived?.();
    });
  const metrics = new Metrics({ defaultMetrics: false });
  const queue = new BackchannelLogout({ provider: fakeProvider(), fetch, metrics, logger: createLogger({ level: 'silent' }), settings });
  const count = async (result: string): Promise<number> => (await metrics.backchannelLogout.get()).values.find((v) => v.labels.result === result)?.value ?? 0;
  const until = async (n: number): Promise<void> => {
    while (calls.length < n) await new Promise<void>((r) => (arrived = r));
  };
  return { queue, calls, count, until };
}

describe('back-channel logout queue', () => {
  it('sends at most maxInFlight at once and the rest as they finish; skips clients without a URI, and sid-less notices to clients that require sid', async () => {
    const h = harness({ maxInFlight: 2 });
    h.queue.notify([
      { clientId: 'a', sub: 'd:1', sid: 's1' },
      { clientId: 'a', sub: 'd:2', sid: 's2' },
      { clientId: 'a', sub: 'd:3', sid: 's3' },
      { clientId: 'none', sub: 'd:1', sid: 's1' },
      { clientId: 'strict', sub: 'd:1' },
      { clientId: 'a', sub: 'd:1', sid: 's1' },
    ]);
    await h.until(2);
    await new Promise((r) => setImmediate(r));
    assert.equal(h.calls.length, 2, 'two in flight, the third waits');
    h.calls[0]!.answer(200);
    await h.until(3);
    h.calls[1]!.answer(204);
    h.calls[2]!.answer(200);
    await h.queue.idle();
    assert.deepEqual(h.calls.map((c) => c.token.sub), ['d:1', 'd:2', 'd:3'], 'the duplicate went once');
    assert.equal(h.calls[0]!.token.sid, 's1');
    assert.equal(await h.count('delivered'), 3);
  });

  it('drops notices beyond maxQueued (counted), and drain gives up on what is left', async () => {
    const h = harness({ maxInFlight: 1, maxQueued: 1 });
    h.queue.notify([
      { clientId: 'a', sub: 'd:1' },
      { clientId: 'a', sub: 'd:2' },
      { clientId: 'a', sub: 'd:3' },
    ]);
    await h.until(1);
    assert.equal(await h.count('dropped'), 1, 'one sending, one waiting, one dropped');
    await h.queue.drain(10);
    h.calls[0]!.answer(500);
    await new Promise((r) => setImmediate(r));
    h.queue.notify([{ clientId: 'a', sub: 'd:4' }]);
    await new Promise((r) => setImmediate(r));
    assert.equal(h.calls.length, 1, 'nothing more is sent after drain');
    assert.equal(await h.count('failed'), 1, 'the open attempt ends as a failure, without a retry');
  });
});
