import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { keys, LEASE_TTL_MS, RedisStore } from '../../../src/store/index.js';
import { OPERATOR_AUTH } from '../../helpers/gateway.js';
import { idps } from '../../helpers/keys.js';
import { redisUrl } from '../../helpers/redis.js';
import { pollUntil, request, startGatewayProcess, type GatewayProcess, type Outcome } from '../resilience/helpers.js';

/**
 * The SSO switch lock when the gateway process running a switch is killed (issue 18, finding 2): two
 * gateway processes (src/main.ts, as in production) on one Redis; process A switches a 20,000-member
 * tenant and is SIGKILLed mid-switch.
 * - While A's switch runs, an identical PUT to B is refused 409 `sso_switch_in_progress` with
 *   `Retry-After` (the lock's remaining lease: a live holder keeps renewing a short lease).
 * - After the kill, A's lock outlives it by one lease (5 s) at most, not 15 s: B refuses with a
 *   `Retry-After` of at most the lease, and the first identical PUT once that has passed resumes the switch
 *   (200) with the exact counts the preview promised before it started.
 */

const N = 20_000;
const D = 'gw-killed.example';
const samlOn = {
  enabled: true,
  type: 'saml',
  userKey: 'externalKey',
  webLoginUrl: idps.a.ssoUrl,
  saml: { idpEntityId: idps.a.entityId, idpCertificates: [idps.a.certificate] },
};

const json = (outcome: Outcome): Record<string, unknown> => {
  assert.equal(outcome.kind, 'answer', JSON.stringify(outcome));
  return outcome.kind === 'answer' ? (JSON.parse(outcome.text) as Record<string, unknown>) : {};
};

describe('a gateway process killed mid-switch: the lock outlives it by one short lease at most', () => {
  const prefix = `test:${randomBytes(6).toString('hex')}:`;
  let a: GatewayProcess;
  let b: GatewayProcess;
  let raw: RedisStore;

  const api = (gw: GatewayProcess, method: string, path: string, body?: unknown, type = 'application/json'): Promise<Outcome> =>
    request(`${gw.base}/admin/v1${path}`, {
      method,
      headers: { authorization: OPERATOR_AUTH, ...(body === undefined ? {} : { 'content-type': type }) },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
      deadlineMs: 60_000,
    });

  /** PUT …/sso to one process: status, body and Retry-After. */
  const putSso = async (gw: GatewayProcess): Promise<{ status: number; body: Record<string, unknown>; retryAfter: string | null }> => {
    const res = await fetch(`${gw.base}/admin/v1/domains/${D}/sso`, {
      method: 'PUT',
      headers: { authorization: OPERATOR_AUTH, 'content-type': 'application/json' },
      body: JSON.stringify(samlOn),
      signal: AbortSignal.timeout(60_000),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown>, retryAfter: res.headers.get('retry-after') };
  };

  before(async () => {
    const url = await redisUrl();
    const env = { REDIS_URL: url, REDIS_KEY_PREFIX: prefix, WORKERS: '1' };
    a = await startGatewayProcess(env);
    b = await startGatewayProcess(env);
    raw = new RedisStore({ url, keyPrefix: prefix, commandTimeoutMs: 2000 });
    await raw.connect();
  });

  after(async () => {
    for (const gw of [a, b]) if (gw && gw.child.exitCode === null && gw.child.signalCode === null) gw.child.kill('SIGKILL');
    if (raw) {
      let cursor = '0';
      do {
        const [next, batch] = await raw.client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        cursor = next;
        // SCAN gives full names; the client adds the prefix again, so delete with it stripped.
        if (batch.length) await raw.client.del(...batch.map((k) => k.slice(prefix.length)));
      } while (cursor !== '0');
      await raw.close();
    }
  });

  it('409 with Retry-After while it runs; after the kill, Retry-After ≤ the lease, then the first PUT resumes it exactly', { timeout: 180_000 }, async (t) => {
    const created = await api(a, 'POST', '/domains', { domain: D, name: D, plan: 'standard' });
    assert.ok(created.kind === 'answer' && created.status === 201, JSON.stringify(created).slice(0, 500));
    const csv = ['account,name,externalKey', ...Array.from({ length: N }, (_, i) => `p${i}@${D},Person ${i},ek-${i}`)].join('\n');
    const imported = await api(a, 'POST', `/domains/${D}/members.csv`, csv, 'text/csv');
    assert.deepEqual(json(imported), { created: N });
    const preview = json(await api(b, 'POST', `/domains/${D}/sso/preview`, samlOn));
    assert.equal(preview.switching, true);
    const expected = preview.effects as Record<string, number>;
    assert.equal(expected.pendingActivated, N, 'every imported member is pending');

    // A starts the switch; as soon as its first batch is recorded, B is asked the same.
    const running = api(a, 'PUT', `/domains/${D}/sso`, samlOn);
    let job: { membersDone: number } | null = null;
    for (let i = 0; i < 4000 && !(job && job.membersDone > 0); i++) {
      const rawJob = await raw.get(keys.ssoSwitchJob(D));
      job = rawJob === null ? null : (JSON.parse(rawJob) as { membersDone: number });
      if (!(job && job.membersDone > 0)) await sleep(2);
    }
    assert.ok(job && job.membersDone > 0 && job.membersDone < N, `A is mid-switch (${job?.membersDone ?? 0} of ${N})`);
    const concurrent = await putSso(b);
    a.child.kill('SIGKILL');
    const killedAt = performance.now();
    assert.equal(concurrent.status, 409, JSON.stringify(concurrent.body));
    assert.equal(concurrent.body.error, 'sso_switch_in_progress');
    const liveRetry = Number(concurrent.retryAfter);
    assert.ok(Number.isInteger(liveRetry) && liveRetry >= 1 && liveRetry <= LEASE_TTL_MS / 1000, `Retry-After ${concurrent.retryAfter}`);
    assert.equal((await running).kind, 'network_error', 'A died with the request open');
    const doneAtKill = (JSON.parse((await raw.get(keys.ssoSwitchJob(D)))!) as { membersDone: number }).membersDone;
    assert.ok(doneAtKill < N, `the kill fell mid-switch (${doneAtKill} of ${N} done)`);

    // Right after the kill, A's lock is still there (nothing can know A is gone), for one short lease at most.
    const pttl = await raw.pttl(keys.ssoSwitchLock(D));
    assert.ok(pttl <= LEASE_TTL_MS, `the dead holder's lease is short (${pttl} ms left)`);
    let first = await putSso(b);
    if (first.status === 409) {
      assert.equal(first.body.error, 'sso_switch_in_progress');
      const retryAfter = Number(first.retryAfter);
      assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= LEASE_TTL_MS / 1000, `Retry-After ${first.retryAfter}`);
      t.diagnostic(`first PUT after the kill: 409, Retry-After ${retryAfter} s (lock PTTL ${pttl} ms at the kill)`);
      await sleep(retryAfter * 1000);
      t.diagnostic(`the resuming PUT sent ${Math.round(performance.now() - killedAt)} ms after the kill`);
      first = await putSso(b);
    } else t.diagnostic('first PUT after the kill resumed at once');

    // The first PUT after Retry-After resumes the switch and ends exactly as the preview said.
    assert.equal(first.status, 200, JSON.stringify(first.body).slice(0, 300));
    assert.equal(first.body.switched, true);
    assert.deepEqual(first.body.effects, expected);
    assert.equal(await raw.get(keys.ssoSwitchJob(D)), null, 'no job left');
    assert.equal(await raw.pttl(keys.ssoSwitchLock(D)), -2, 'no lock left');
    const again = await putSso(b);
    assert.equal(again.status, 200);
    assert.equal(again.body.switched, false, 'a second identical PUT changes nothing');
  });
});

/**
 * The same kill, then the killed process comes back (restarted by its orchestrator with the same
 * INSTANCE_ID): before serving it releases the lock its previous run held, so the first identical PUT
 * once it answers /readyz resumes the switch at once (200, the preview's exact counts) — no waiting out
 * the lease. A concurrent PUT while the live switch runs is still 409, and a lock a live process of
 * another instance holds is not released by the booting process (even with a stray registry entry naming it).
 */
describe('a gateway process killed mid-switch and restarted with the same INSTANCE_ID: the first PUT resumes at once', () => {
  const prefix = `test:${randomBytes(6).toString('hex')}:`;
  const D2 = 'gw-restarted.example';
  const OTHER = 'other-live.example';
  let url: string;
  let a: GatewayProcess;
  let b: GatewayProcess;
  let a2: GatewayProcess | undefined;
  let raw: RedisStore;

  const api = (gw: GatewayProcess, method: string, path: string, body?: unknown, type = 'application/json'): Promise<Outcome> =>
    request(`${gw.base}/admin/v1${path}`, {
      method,
      headers: { authorization: OPERATOR_AUTH, ...(body === undefined ? {} : { 'content-type': type }) },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
      deadlineMs: 60_000,
    });
  const putSso = async (gw: GatewayProcess, domain = D2): Promise<{ status: number; body: Record<string, unknown>; retryAfter: string | null }> => {
    const res = await fetch(`${gw.base}/admin/v1/domains/${domain}/sso`, {
      method: 'PUT',
      headers: { authorization: OPERATOR_AUTH, 'content-type': 'application/json' },
      body: JSON.stringify(samlOn),
      signal: AbortSignal.timeout(60_000),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown>, retryAfter: res.headers.get('retry-after') };
  };
  const envOf = (instance: string): Record<string, string> => ({ REDIS_URL: url, REDIS_KEY_PREFIX: prefix, WORKERS: '1', INSTANCE_ID: instance });

  before(async () => {
    url = await redisUrl();
    a = await startGatewayProcess(envOf('gw-a'));
    b = await startGatewayProcess(envOf('gw-b'));
    raw = new RedisStore({ url, keyPrefix: prefix, commandTimeoutMs: 2000 });
    await raw.connect();
  });

  after(async () => {
    for (const gw of [a, b, a2]) if (gw && gw.child.exitCode === null && gw.child.signalCode === null) gw.child.kill('SIGKILL');
    if (raw) {
      let cursor = '0';
      do {
        const [next, batch] = await raw.client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        cursor = next;
        if (batch.length) await raw.client.del(...batch.map((k) => k.slice(prefix.length)));
      } while (cursor !== '0');
      await raw.close();
    }
  });

  it('409 while it runs; after the restart, the first PUT once /readyz answers 200 resumes it exactly; another instance’s live lock stays', { timeout: 180_000 }, async (t) => {
    for (const domain of [D2, OTHER]) {
      const created = await api(a, 'POST', '/domains', { domain, name: domain, plan: 'standard' });
      assert.ok(created.kind === 'answer' && created.status === 201, JSON.stringify(created).slice(0, 500));
    }
    const csv = ['account,name,externalKey', ...Array.from({ length: N }, (_, i) => `p${i}@${D2},Person ${i},ek-${i}`)].join('\n');
    assert.deepEqual(json(await api(a, 'POST', `/domains/${D2}/members.csv`, csv, 'text/csv')), { created: N });
    const preview = json(await api(b, 'POST', `/domains/${D2}/sso/preview`, samlOn));
    const expected = preview.effects as Record<string, number>;
    assert.equal(expected.pendingActivated, N);

    const running = api(a, 'PUT', `/domains/${D2}/sso`, samlOn);
    let job: { membersDone: number } | null = null;
    for (let i = 0; i < 4000 && !(job && job.membersDone > 0); i++) {
      const rawJob = await raw.get(keys.ssoSwitchJob(D2));
      job = rawJob === null ? null : (JSON.parse(rawJob) as { membersDone: number });
      if (!(job && job.membersDone > 0)) await sleep(2);
    }
    assert.ok(job && job.membersDone > 0 && job.membersDone < N, `A is mid-switch (${job?.membersDone ?? 0} of ${N})`);
    const concurrent = await putSso(b);
    const lockValue = await raw.get(keys.ssoSwitchLock(D2));
    a.child.kill('SIGKILL');
    assert.equal(concurrent.status, 409, JSON.stringify(concurrent.body));
    assert.equal(concurrent.body.error, 'sso_switch_in_progress');
    assert.ok(lockValue?.startsWith('gw-a/'), `the lock names A's instance (${lockValue})`);
    assert.equal((await running).kind, 'network_error', 'A died with the request open');
    const doneAtKill = (JSON.parse((await raw.get(keys.ssoSwitchJob(D2)))!) as { membersDone: number }).membersDone;
    assert.ok(doneAtKill < N, `the kill fell mid-switch (${doneAtKill} of ${N} done)`);
    assert.equal(await raw.get(keys.ssoSwitchLock(D2)), lockValue, "A's lock outlives it (its lease)");
    assert.deepEqual(await raw.hGetAll(keys.lockRegistry('gw-a')), { [keys.ssoSwitchLock(D2)]: lockValue }, "A's registry names the lock");

    // A live holder of another instance (gw-b) holds OTHER's switch lock, with a stray entry in gw-a's registry too.
    const othersValue = 'gw-b/0123456789ab.live';
    await raw.set(keys.ssoSwitchLock(OTHER), othersValue, { ttlMs: 60_000 });
    await raw.hSet(keys.lockRegistry('gw-b'), { [keys.ssoSwitchLock(OTHER)]: othersValue });
    await raw.hSet(keys.lockRegistry('gw-a'), { [keys.ssoSwitchLock(OTHER)]: othersValue });

    // A comes back with the same INSTANCE_ID, well within the lease.
    a2 = await startGatewayProcess(envOf('gw-a'));
    const ready = await fetch(`${a2.base}/readyz`);
    assert.equal(ready.status, 200);
    t.diagnostic(`lock PTTL when the restarted process answered /readyz: ${await raw.pttl(keys.ssoSwitchLock(D2))} ms (-2 = released)`);
    assert.equal(await raw.get(keys.ssoSwitchLock(D2)), null, 'the restarted instance released its previous run’s lock before serving');
    // Released by the boot (it found the lock still there), not by the lease running out meanwhile.
    assert.match(a2.output(), /released the locks a previous run of this instance held/);
    assert.ok(a2.output().includes(keys.ssoSwitchLock(D2)) && !a2.output().includes(keys.ssoSwitchLock(OTHER)), a2.output().slice(-2000));
    assert.equal(await raw.get(keys.ssoSwitchLock(OTHER)), othersValue, 'another instance’s live lock is not released');
    assert.deepEqual(await raw.hGetAll(keys.lockRegistry('gw-a')), {}, "A's registry is cleared");
    const othersRefusal = await putSso(a2, OTHER);
    assert.equal(othersRefusal.status, 409, 'the other instance’s switch is still protected');
    assert.equal(othersRefusal.body.error, 'sso_switch_in_progress');

    // The first identical PUT resumes the switch at once and ends exactly as the preview said.
    const first = await putSso(b);
    assert.equal(first.status, 200, JSON.stringify(first.body).slice(0, 300));
    assert.equal(first.body.switched, true);
    assert.deepEqual(first.body.effects, expected);
    assert.equal(await raw.get(keys.ssoSwitchJob(D2)), null, 'no job left');
    assert.equal(await raw.pttl(keys.ssoSwitchLock(D2)), -2, 'no lock left');
    assert.equal((await putSso(a2)).body.switched, false, 'a second identical PUT changes nothing');
  });
});

/**
 * The same with node:cluster (WORKERS=2): the worker running the switch is SIGKILLed; the primary forks
 * its replacement in the same slot (same instance identity `<INSTANCE_ID>.w<slot>`), which releases the
 * lock before it serves, so the first identical PUT after the replacement listens resumes at once.
 */
describe('a cluster worker killed mid-switch and re-forked by the primary: the first PUT resumes at once', () => {
  const prefix = `test:${randomBytes(6).toString('hex')}:`;
  const D3 = 'gw-reforked.example';
  let gw: GatewayProcess;
  let raw: RedisStore;

  const api = (method: string, path: string, body?: unknown, type = 'application/json'): Promise<Outcome> =>
    request(`${gw.base}/admin/v1${path}`, {
      method,
      headers: { authorization: OPERATOR_AUTH, ...(body === undefined ? {} : { 'content-type': type }) },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
      deadlineMs: 60_000,
    });
  /** The workers that logged `idp-bridge listening`: instance identity and pid, in order. */
  const listening = (): Array<{ instanceId: string; pid: number }> =>
    gw
      .output()
      .split('\n')
      .filter((l) => l.includes('idp-bridge listening'))
      .map((l) => JSON.parse(l) as { instanceId: string; pid: number });

  before(async () => {
    const url = await redisUrl();
    gw = await startGatewayProcess({ REDIS_URL: url, REDIS_KEY_PREFIX: prefix, WORKERS: '2', INSTANCE_ID: 'gw-c' });
    raw = new RedisStore({ url, keyPrefix: prefix, commandTimeoutMs: 2000 });
    await raw.connect();
  });

  after(async () => {
    if (gw && gw.child.exitCode === null && gw.child.signalCode === null) {
      gw.child.kill('SIGTERM');
      await new Promise((r) => gw.child.once('exit', r));
    }
    if (raw) {
      let cursor = '0';
      do {
        const [next, batch] = await raw.client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        cursor = next;
        if (batch.length) await raw.client.del(...batch.map((k) => k.slice(prefix.length)));
      } while (cursor !== '0');
      await raw.close();
    }
  });

  it('kill the switching worker; its replacement (same slot) releases the lock; the first PUT resumes exactly', { timeout: 180_000 }, async () => {
    assert.ok(await pollUntil(() => listening().length === 2, 400, 50), gw.output().slice(-2000));
    assert.deepEqual(listening().map((w) => w.instanceId).sort(), ['gw-c.w0', 'gw-c.w1']);
    const created = await api('POST', '/domains', { domain: D3, name: D3, plan: 'standard' });
    assert.ok(created.kind === 'answer' && created.status === 201, JSON.stringify(created).slice(0, 500));
    const csv = ['account,name,externalKey', ...Array.from({ length: N }, (_, i) => `p${i}@${D3},Person ${i},ek-${i}`)].join('\n');
    assert.deepEqual(json(await api('POST', `/domains/${D3}/members.csv`, csv, 'text/csv')), { created: N });
    const expected = json(await api('POST', `/domains/${D3}/sso/preview`, samlOn)).effects as Record<string, number>;

    const running = api('PUT', `/domains/${D3}/sso`, samlOn);
    let job: { membersDone: number } | null = null;
    for (let i = 0; i < 4000 && !(job && job.membersDone > 0); i++) {
      const rawJob = await raw.get(keys.ssoSwitchJob(D3));
      job = rawJob === null ? null : (JSON.parse(rawJob) as { membersDone: number });
      if (!(job && job.membersDone > 0)) await sleep(2);
    }
    assert.ok(job && job.membersDone > 0 && job.membersDone < N, `mid-switch (${job?.membersDone ?? 0} of ${N})`);
    const concurrent = json(await api('PUT', `/domains/${D3}/sso`, samlOn));
    const lockValue = (await raw.get(keys.ssoSwitchLock(D3)))!;
    const instanceId = lockValue.slice(0, lockValue.indexOf('/'));
    const victim = listening().find((w) => w.instanceId === instanceId);
    assert.ok(victim, `the lock names a worker (${lockValue})`);
    process.kill(victim.pid, 'SIGKILL');
    assert.equal(concurrent.error, 'sso_switch_in_progress', 'a concurrent PUT while the live switch runs is 409');
    assert.equal((await running).kind, 'network_error', 'the worker died with the request open');
    assert.ok((JSON.parse((await raw.get(keys.ssoSwitchJob(D3)))!) as { membersDone: number }).membersDone < N, 'the kill fell mid-switch');

    // The primary forks the replacement in the same slot; it releases the lock before it listens.
    assert.ok(await pollUntil(() => listening().filter((w) => w.instanceId === instanceId).length === 2, 400, 50), gw.output().slice(-2000));
    const replacement = listening().filter((w) => w.instanceId === instanceId)[1]!;
    assert.notEqual(replacement.pid, victim.pid);
    assert.match(gw.output(), /released the locks a previous run of this instance held/);
    assert.equal(await raw.get(keys.ssoSwitchLock(D3)), null, 'released by the replacement');
    assert.deepEqual(await raw.hGetAll(keys.lockRegistry(instanceId)), {});

    const first = json(await api('PUT', `/domains/${D3}/sso`, samlOn));
    assert.equal(first.switched, true, JSON.stringify(first).slice(0, 300));
    assert.deepEqual(first.effects, expected);
    assert.equal(await raw.get(keys.ssoSwitchJob(D3)), null, 'no job left');
  });
});
