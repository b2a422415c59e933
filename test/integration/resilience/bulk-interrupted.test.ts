import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Effects } from '../../../src/admin/sso-switch.js';
import type { Member } from '../../../src/domain/member.js';
import type { NewMember } from '../../../src/domain/members.js';
import { digestForKey, keys, RedisStore, type KeyValueStore } from '../../../src/store/index.js';
import { OPERATOR_AUTH, createGateway, type Gateway } from '../../helpers/gateway.js';
import { idps } from '../../helpers/keys.js';
import { assertExternalKeyIndexConsistent } from '../../helpers/members.js';
import { atomicOps, pollUntil, startDurableRedis, trippingStore, type DurableRedis } from './helpers.js';
import type { AtomicOp } from '../../../src/store/index.js';

/**
 * Bulk operations interrupted by Redis dying mid-request — a real SIGKILL of redis-server (with an
 * append-only file, so what Redis acknowledged survives), at a known point chosen by a store wrapper —
 * and finished after Redis is started again:
 * - the SSO switch (S-21, S-22, `PUT …/sso`): the request answers 503; the job record says what is
 *   pending; every member is wholly in its old or its new state, exactly the members the job records
 *   as done are switched, and the counts so far are exactly theirs; the next PUT finishes with the
 *   counts of an uninterrupted switch. A restarted Redis re-hashes the member set, so the SSCAN cursor
 *   of the dead run means nothing to it (the resumed switch must not trust it);
 * - the external-key CSV import (S-28, `PUT …/external-keys.csv`): killed while applying, the job
 *   says which batches are left, each batch is wholly applied or not at all, and the next external-key
 *   request finishes it with the exact counts; killed while staging, nothing is applied, ever.
 */

const N = 3000;
const HOUR = 3600_000;
const A_HASH = 'scrypt$32768$8$1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g';
const switchDoneKey = (domain: string): string => `${keys.ssoSwitchJob(domain)}:done`;

const samlOn = {
  enabled: true,
  type: 'saml',
  userKey: 'externalKey',
  webLoginUrl: idps.a.ssoUrl,
  saml: { idpEntityId: idps.a.entityId, idpCertificates: [idps.a.certificate] },
};

/** Member i of a switch tenant: 60% in_use, 20% pending, 10% unapproved, 10% suspended; member 0 is the super admin. */
function switchMember(i: number, domain: string): NewMember & { id: string; sessions: number; invited: boolean } {
  const r = i % 10;
  const status = r < 6 ? 'in_use' : r < 8 ? 'pending' : r < 9 ? 'unapproved' : 'suspended';
  return {
    id: `sw-${i}`,
    account: `person${i}@${domain}`,
    name: `Person ${i}`,
    externalKey: `ek-${i}`,
    role: i === 0 ? 'super_admin' : 'member',
    status,
    ...(i % 4 === 0 ? { passwordHash: A_HASH } : {}),
    appPasswords: i % 5 === 0 ? [{ id: `ap_${i}`, name: 'mail', hash: A_HASH, createdAt: 1_700_000_000_000 }] : [],
    createdAt: 1_700_000_000_000,
    sessions: status === 'in_use' ? 1 + (i % 2) : 0,
    invited: status === 'pending' && i % 3 === 0,
  };
}

interface SwitchTenant {
  domain: string;
  members: Map<string, ReturnType<typeof switchMember>>;
  /** Raw session ids by member id. */
  sessions: Map<string, string[]>;
  invitations: number;
}

async function seedSwitchTenant(gw: Gateway, domain: string): Promise<SwitchTenant> {
  const created = await gw.http.post('/admin/v1/domains').set('Authorization', OPERATOR_AUTH).send({ domain, name: domain, plan: 'standard' });
  assert.equal(created.status, 201, created.text);
  const tenant: SwitchTenant = { domain, members: new Map(), sessions: new Map(), invitations: 0 };
  const all = Array.from({ length: N }, (_, i) => switchMember(i, domain));
  for (let i = 0; i < all.length; i += 300) {
    await Promise.all(
      all.slice(i, i + 300).map(async (m) => {
        const { sessions, invited, ...record } = m;
        await gw.services.members.save(domain, record);
        tenant.members.set(m.id, m);
        const ids: string[] = [];
        for (let s = 0; s < sessions; s++) ids.push((await gw.services.sessions.create({ memberId: m.id, domain, account: m.account, authMethod: 'saml', clientKind: 'web' }, 8 * HOUR)).id);
        tenant.sessions.set(m.id, ids);
        if (invited) {
          const token = randomBytes(32).toString('base64url');
          const invitation = { id: `inv_${m.id}`, memberId: m.id, createdAt: gw.clock.now(), expiresAt: gw.clock.now() + 7 * 24 * HOUR, tokenDigest: digestForKey(token) };
          await gw.store.hSet(keys.invitations(domain), { [invitation.id]: JSON.stringify(invitation) });
          tenant.invitations++;
        }
      }),
    );
  }
  return tenant;
}

/** What switching does to one member, and the counts it adds: the expected new state (null = deleted). */
function switched(m: ReturnType<typeof switchMember>, enabling: boolean): { after: Pick<Member, 'status' | 'appPasswords'> & { hasPassword: boolean } | null; effects: Partial<Effects> } {
  const sessionsEnded = m.sessions;
  if (enabling) {
    if (m.status === 'unapproved') return { after: null, effects: { unapprovedDeleted: 1, appPasswordsDeleted: m.appPasswords!.length, sessionsEnded } };
    return {
      after: { status: m.status === 'pending' ? 'in_use' : m.status!, appPasswords: [], hasPassword: Boolean(m.passwordHash) },
      effects: { pendingActivated: m.status === 'pending' ? 1 : 0, appPasswordsDeleted: m.appPasswords!.length, sessionsEnded },
    };
  }
  const dropsPassword = Boolean(m.passwordHash) && m.role !== 'super_admin';
  return { after: { status: m.status!, appPasswords: m.appPasswords as Member['appPasswords'], hasPassword: Boolean(m.passwordHash) && !dropsPassword }, effects: { passwordsDeleted: dropsPassword ? 1 : 0, sessionsEnded } };
}

const zero = (): Effects => ({ pendingActivated: 0, sessionsEnded: 0, invitationsInvalidated: 0, unapprovedDeleted: 0, appPasswordsDeleted: 0, tokensRevoked: 0, passwordsDeleted: 0 });

function sumEffects(tenant: SwitchTenant, ids: Iterable<string>, enabling: boolean): Effects {
  const total = zero();
  for (const id of ids) {
    for (const [name, n] of Object.entries(switched(tenant.members.get(id)!, enabling).effects)) total[name as keyof Effects] += n;
  }
  return total;
}

/** A member's state as the switch sees it (null when deleted). */
async function stateOf(store: KeyValueStore, domain: string, id: string): Promise<{ status: string; appPasswords: unknown[]; hasPassword: boolean } | null> {
  const raw = await store.get(keys.member(domain, id));
  if (raw === null) return null;
  const m = JSON.parse(raw) as Member;
  return { status: m.status, appPasswords: m.appPasswords, hasPassword: Boolean(m.passwordHash) };
}

async function liveSessionCount(gw: Gateway, ids: string[]): Promise<number> {
  const found = await Promise.all(ids.map((id) => gw.services.sessions.find(id)));
  return found.filter(Boolean).length;
}

/**
 * The failed run could not release its lock while Redis was down; it keeps trying until its short lease
 * (5 s) ends, and this process's next caller takes a lock whose holder has ended here over at once. So
 * the first identical request once Redis is back is not refused: the lock is gone or free to take.
 */
async function assertDeadLockNoObstacle(store: KeyValueStore, key: string): Promise<void> {
  const pttl = await store.pttl(key);
  assert.ok(pttl <= 5000, `the dead run's lock is a short lease at most (${pttl} ms)`);
}

describe('bulk operations interrupted by a Redis kill, finished after it is back', () => {
  let redis: DurableRedis;
  let raw: RedisStore;
  let gw: Gateway;
  /** Armed by a test: Redis dies right before the n-th command matching `when`. */
  let tripwire: { when: (method: string, args: unknown[]) => boolean; n: number; seen: number } | null = null;
  /** The arguments of the command Redis died before. */
  let trippedOn: unknown[] | null = null;

  /** Kills Redis at the armed point of `run`, lets the request fail, starts Redis again, waits until the gateway reads it. */
  async function interrupted<T>(when: (method: string, args: unknown[]) => boolean, n: number, run: () => Promise<T>): Promise<T> {
    tripwire = { when, n, seen: 0 };
    trippedOn = null;
    try {
      return await run();
    } finally {
      tripwire = null;
      assert.ok(trippedOn, 'the tripwire fired');
      await redis.restart();
      assert.ok(await pollUntil(async () => (await gw.http.get('/readyz')).status === 200, 150, 100), 'the gateway reads Redis again by itself');
    }
  }

  before(async () => {
    redis = await startDurableRedis();
    raw = new RedisStore({ url: redis.url, keyPrefix: 'bulk:', commandTimeoutMs: 2000 });
    await raw.connect();
    const store = trippingStore(
      raw,
      (method, args) => {
        if (!tripwire?.when(method, args) || ++tripwire.seen !== tripwire.n) return false;
        tripwire = null;
        return true;
      },
      async (_method, args) => {
        trippedOn = args;
        await redis.kill();
      },
    );
    gw = await createGateway({ store });
  });

  after(async () => {
    await raw?.close();
    await redis?.dispose();
  });

  describe('the SSO switch', () => {
    const D = 'switch-kill.example';
    let tenant: SwitchTenant;

    before(async () => {
      tenant = await seedSwitchTenant(gw, D);
    });

    it('enabling, killed between batches: 503; the job says what is done; each member wholly old or new; counts exactly those of the done members', { timeout: 60_000 }, async () => {
      // The switch reads the members page by page (SSCAN); Redis dies before it reads the fourth page.
      const res = await interrupted(
        (method, args) => method === 'sScan' && args[0] === keys.memberIds(D),
        4,
        () => gw.http.put(`/admin/v1/domains/${D}/sso`).set('Authorization', OPERATOR_AUTH).send(samlOn),
      );
      assert.equal(res.status, 503, res.text);
      assert.equal(res.body.error, 'store_unavailable');

      // The intent is recorded and SSO already reads as on (new logins follow it); the job is pending.
      const sso = await gw.http.get(`/admin/v1/domains/${D}/sso`).set('Authorization', OPERATOR_AUTH);
      assert.equal(sso.status, 200, sso.text);
      assert.equal(sso.body.enabled, true);
      assert.equal(sso.body.switchInProgress?.target, true);
      const done = new Set(await raw.sMembers(switchDoneKey(D)));
      assert.equal(sso.body.switchInProgress.membersDone, done.size, 'the job counts exactly the members recorded as done');
      assert.ok(done.size > 0 && done.size < N, `a part was done (${done.size} of ${N})`);

      // Every member is wholly in its old or its new state, and the new ones are exactly the done ones.
      const members = [...tenant.members.values()];
      const [states, live] = await Promise.all([
        Promise.all(members.map((m) => stateOf(raw, D, m.id))),
        Promise.all(members.map((m) => liveSessionCount(gw, tenant.sessions.get(m.id)!))),
      ]);
      members.forEach((m, i) => {
        if (done.has(m.id)) {
          assert.deepEqual(states[i], switched(m, true).after, `${m.id} (done) is wholly switched`);
          assert.equal(live[i], 0, `${m.id} (done): sessions ended`);
        } else {
          assert.deepEqual(states[i], { status: m.status, appPasswords: m.appPasswords, hasPassword: Boolean(m.passwordHash) }, `${m.id} (not done) is untouched`);
          assert.equal(live[i], m.sessions, `${m.id} (not done): sessions alive`);
        }
      });
      // The counts so far: the tenant-wide effects plus exactly the done members' effects.
      const counts = await raw.hGetAll(keys.ssoSwitchCounts(D));
      const expected = { ...sumEffects(tenant, done, true), invitationsInvalidated: tenant.invitations };
      for (const [name, n] of Object.entries(expected)) assert.equal(Number(counts[name] ?? 0), n, name);
      assert.equal(await raw.hLen(keys.invitations(D)), 0, 'invitation links died first');
    });

    it('the first PUT after Redis is back finishes it (the dead run’s lock is no obstacle), with the counts of an uninterrupted switch', { timeout: 60_000 }, async () => {
      await assertDeadLockNoObstacle(raw, keys.ssoSwitchLock(D));
      const res = await gw.http.put(`/admin/v1/domains/${D}/sso`).set('Authorization', OPERATOR_AUTH).send(samlOn);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.switched, true);
      const everyone = sumEffects(tenant, tenant.members.keys(), true);
      assert.deepEqual(res.body.effects, { ...everyone, invitationsInvalidated: tenant.invitations });

      const finals = await Promise.all([...tenant.members.keys()].map((id) => stateOf(raw, D, id)));
      [...tenant.members.values()].forEach((m, i) => assert.deepEqual(finals[i], switched(m, true).after, m.id));
      const allSessions = [...tenant.sessions.values()].flat();
      assert.equal(await liveSessionCount(gw, allSessions), 0);
      for (const key of [keys.ssoSwitchJob(D), keys.ssoSwitchCounts(D), keys.ssoSwitchLock(D), switchDoneKey(D)]) assert.equal(await raw.pttl(key), -2, `${key} is gone`);
      assert.equal((await gw.services.tenants.load(D)).ssoEpoch, 1, 'one switch, one epoch');
      await assertExternalKeyIndexConsistent(gw, D);
      const again = await gw.http.put(`/admin/v1/domains/${D}/sso`).set('Authorization', OPERATOR_AUTH).send(samlOn);
      assert.equal(again.body.switched, false);
    });

    it('disabling, killed inside a batch (its sessions ended, its MULTI not sent): the resumed switch ends in the same state; only that batch’s session count can be missing', { timeout: 60_000 }, async () => {
      // Sessions made while SSO was on: one per member.
      const remaining = [...tenant.members.values()].filter((m) => m.status !== 'unapproved');
      for (let i = 0; i < remaining.length; i += 300) {
        await Promise.all(
          remaining.slice(i, i + 300).map(async (m) => {
            const { id: sid } = await gw.services.sessions.create({ memberId: m.id, domain: D, account: m.account, authMethod: 'saml', clientKind: 'web' }, 8 * HOUR);
            tenant.sessions.set(m.id, [sid]);
          }),
        );
      }
      const res = await interrupted(
        (method, args) => method === 'atomic' && atomicOps(method, args).some((o) => o.key === switchDoneKey(D)),
        3,
        () => gw.http.put(`/admin/v1/domains/${D}/sso`).set('Authorization', OPERATOR_AUTH).send({ enabled: false }),
      );
      assert.equal(res.status, 503, res.text);
      assert.equal(res.body.error, 'store_unavailable');

      const done = new Set(await raw.sMembers(switchDoneKey(D)));
      assert.ok(done.size > 0 && done.size < N);
      const midway = await Promise.all(remaining.map((m) => stateOf(raw, D, m.id)));
      remaining.forEach((m, i) => {
        const hasPassword = done.has(m.id) ? Boolean(m.passwordHash) && m.role === 'super_admin' : Boolean(m.passwordHash);
        assert.deepEqual(midway[i], { ...switched(m, true).after!, hasPassword }, `${m.id} is wholly old or new`);
      });
      const counts = await raw.hGetAll(keys.ssoSwitchCounts(D));
      const doneMembers = remaining.filter((m) => done.has(m.id));
      assert.equal(Number(counts.passwordsDeleted ?? 0), doneMembers.filter((m) => m.passwordHash && m.role !== 'super_admin').length);
      assert.equal(Number(counts.sessionsEnded ?? 0), doneMembers.length);

      await assertDeadLockNoObstacle(raw, keys.ssoSwitchLock(D));
      const resumed = await gw.http.put(`/admin/v1/domains/${D}/sso`).set('Authorization', OPERATOR_AUTH).send({ enabled: false });
      assert.equal(resumed.status, 200, resumed.text);
      assert.equal(resumed.body.switched, true);
      const effects = resumed.body.effects as Effects;
      assert.equal(effects.passwordsDeleted, remaining.filter((m) => m.passwordHash && m.role !== 'super_admin').length, 'passwordsDeleted is exact');
      // The interrupted batch's sessions ended before its MULTI was lost: ending them again finds none,
      // so exactly that batch's sessions (one per member) are missing from the count — never the ending.
      const lostBatch = (trippedOn![0] as AtomicOp[]).find((o) => o.op === 'sAdd' && o.key === switchDoneKey(D));
      assert.ok(lostBatch?.op === 'sAdd' && lostBatch.members.length > 0);
      assert.equal(effects.sessionsEnded, remaining.length - lostBatch.members.length, `sessionsEnded ${effects.sessionsEnded} of ${remaining.length}`);
      assert.equal(await liveSessionCount(gw, [...tenant.sessions.values()].flat()), 0, 'yet every session ended');
      const ended = await Promise.all(remaining.map((m) => stateOf(raw, D, m.id)));
      remaining.forEach((m, i) => assert.equal(ended[i]?.hasPassword, Boolean(m.passwordHash) && m.role === 'super_admin', m.id));
      for (const key of [keys.ssoSwitchJob(D), keys.ssoSwitchCounts(D), keys.ssoSwitchLock(D), switchDoneKey(D)]) assert.equal(await raw.pttl(key), -2, `${key} is gone`);
    });
  });

  describe('the external-key CSV import', () => {
    const D = 'csv-kill.example';
    /** account → [key before, key in the file] */
    const plan = new Map<string, { id: string; before: string; after: string }>();
    let csv = '';
    const expectedCounts = { updated: 0, removed: 0, unchanged: 0 };

    before(async () => {
      const created = await gw.http.post('/admin/v1/domains').set('Authorization', OPERATOR_AUTH).send({ domain: D, name: D, plan: 'standard' });
      assert.equal(created.status, 201, created.text);
      const rows = ['account,name,externalKey'];
      for (let i = 0; i < N; i += 300) {
        await Promise.all(
          Array.from({ length: Math.min(300, N - i) }, (_, k) => i + k).map((j) =>
            gw.services.members.save(D, { id: `c-${j}`, account: `user${j}@${D}`, name: `User ${j}`, externalKey: `old-${j}`, role: 'member', status: 'in_use', createdAt: 1_700_000_000_000 }),
          ),
        );
      }
      for (let i = 0; i < N; i++) {
        // Pairs 1500 apart swap keys (so a swap spans batches); of the rest a sixth keep theirs, a sixth lose it.
        const swapWith = i % 50 === 2 ? (i < N / 2 ? i + N / 2 : i - N / 2) : null;
        const after = swapWith !== null ? `old-${swapWith}` : i % 6 === 0 ? `old-${i}` : i % 6 === 1 ? '' : `new-${i}`;
        plan.set(`user${i}@${D}`, { id: `c-${i}`, before: `old-${i}`, after });
        if (after === '') expectedCounts.removed++;
        else if (after === `old-${i}`) expectedCounts.unchanged++;
        else expectedCounts.updated++;
        rows.push(`user${i}@${D},User ${i},${after}`);
      }
      csv = `${rows.join('\r\n')}\r\n`;
    });

    const putCsv = (body: string) => gw.http.put(`/admin/v1/domains/${D}/external-keys.csv`).set('Authorization', OPERATOR_AUTH).set('Content-Type', 'text/csv').send(body);
    const keyOf = async (id: string): Promise<string> => (JSON.parse((await raw.get(keys.member(D, id)))!) as Member).externalKey ?? '';
    const batchKeyPrefix = `${keys.externalKeyImportJob(D)}:`;

    it('killed while staging: 503, and the next request discards the unacknowledged import — nothing was ever applied', { timeout: 60_000 }, async () => {
      const before = await Promise.all([...plan.values()].map((p) => keyOf(p.id)));
      const res = await interrupted(
        (method, args) => method === 'atomic' && atomicOps(method, args).some((o) => o.op === 'hSet' && o.key.startsWith(batchKeyPrefix)),
        3,
        () => putCsv(csv),
      );
      assert.equal(res.status, 503, res.text);
      assert.equal(res.body.error, 'store_unavailable');
      const job = JSON.parse((await raw.get(keys.externalKeyImportJob(D)))!) as { state: string; staged: number };
      assert.equal(job.state, 'staging');
      assert.equal(job.staged, 2, 'two batches were staged before the kill');
      assert.deepEqual(await Promise.all([...plan.values()].map((p) => keyOf(p.id))), before, 'no member changed');

      await assertDeadLockNoObstacle(raw, keys.externalKeysLock(D));
      const list = await gw.http.get(`/admin/v1/domains/${D}/external-keys?count=5`).set('Authorization', OPERATOR_AUTH);
      assert.equal(list.status, 200, list.text);
      assert.equal(await raw.get(keys.externalKeyImportJob(D)), null, 'the staged job is gone');
      assert.deepEqual(await Promise.all([...plan.values()].map((p) => keyOf(p.id))), before, 'still no member changed');
      assert.equal((await raw.sMembers(keys.memberIds(D))).length, N);
      await assertExternalKeyIndexConsistent(gw, D);
    });

    it('killed while applying: 503; the job names the batches left; each batch wholly applied or not; the next request finishes it with the exact counts', { timeout: 60_000 }, async () => {
      const res = await interrupted(
        (method, args) => method === 'atomic' && atomicOps(method, args).some((o) => o.op === 'del' && o.key.startsWith(batchKeyPrefix)),
        3,
        () => putCsv(csv),
      );
      assert.equal(res.status, 503, res.text);
      const job = JSON.parse((await raw.get(keys.externalKeyImportJob(D)))!) as { id: string; state: string; next: number; batches: number; counts: typeof expectedCounts };
      assert.equal(job.state, 'applying', 'the import was committed before the kill');
      assert.equal(job.next, 2, 'two batches applied, the third was being sent');
      assert.deepEqual(job.counts, expectedCounts, 'the job carries the counts of the whole file');
      assert.ok(job.batches > 3);

      // The batches left are exactly the members still in their old state; every other change is applied.
      const pending = new Set<string>();
      for (let n = 0; n < job.batches; n++) {
        const batch = await raw.hGetAll(keys.externalKeyImportBatch(D, job.id, n));
        if (n < job.next) assert.deepEqual(batch, {}, `batch ${n} is applied (and gone)`);
        else {
          assert.ok(Object.keys(batch).length > 0, `batch ${n} is still staged`);
          for (const id of Object.keys(batch)) pending.add(id);
        }
      }
      let applied = 0;
      const changing = [...plan.values()].filter((p) => p.after !== p.before);
      const midway = await Promise.all(changing.map((p) => keyOf(p.id)));
      const holders = await Promise.all(changing.map((p) => (p.after ? raw.hGet(keys.memberByExternalKey(D), p.after) : Promise.resolve(null))));
      for (const [i, p] of changing.entries()) {
        const now = midway[i];
        if (pending.has(p.id)) assert.equal(now, p.before, `${p.id}: pending batch, old key`);
        else {
          assert.equal(now, p.after, `${p.id}: applied batch, new key`);
          if (p.after) assert.equal(holders[i], p.id, `${p.id}: the index points at the new key's holder`);
          applied++;
        }
      }
      assert.ok(applied > 0 && pending.size > 0);

      // While the import waits, a single-member PATCH (not held off by the import's lock) gives a member
      // outside the changes the very key a pending batch hands to someone else: free in the index now.
      const taken = [...plan.values()].find((p) => pending.has(p.id) && p.after.startsWith('new-'))!;
      const bystander = [...plan.values()].find((p) => p.after === p.before)!;
      const patch = await gw.http.patch(`/admin/v1/domains/${D}/members/${bystander.id}`).set('Authorization', OPERATOR_AUTH).send({ externalKey: taken.after });
      assert.equal(patch.status, 200, patch.text);
      // The import wins (it was committed first); the bystander loses the key rather than share it.
      bystander.after = '';

      // A GET of the CSV is "the next external-key request": the dead request's lock is no obstacle, it finishes the import.
      await assertDeadLockNoObstacle(raw, keys.externalKeysLock(D));
      const download = await gw.http.get(`/admin/v1/domains/${D}/external-keys.csv`).set('Authorization', OPERATOR_AUTH).buffer(true);
      assert.equal(download.status, 200, download.text);
      const exported = new Map(
        download.text
          .replace(/^\uFEFF/, '')
          .split('\r\n')
          .slice(1)
          .filter(Boolean)
          .map((line) => [line.split(',')[0]!, line.split(',')[2]!] as const),
      );
      const finals = await Promise.all([...plan.values()].map((p) => keyOf(p.id)));
      for (const [i, [account, p]] of [...plan].entries()) {
        assert.equal(finals[i], p.after, account);
        assert.equal(exported.get(account), p.after, `${account} in the downloaded file`);
      }
      await assertExternalKeyIndexConsistent(gw, D);
      const held = finals.filter(Boolean);
      assert.equal(new Set(held).size, held.length, 'no two members hold one key');
      assert.equal(await raw.get(keys.externalKeyImportJob(D)), null);
      for (let n = 0; n < job.batches; n++) assert.equal(await raw.pttl(keys.externalKeyImportBatch(D, job.id, n)), -2);
      const audit = (await gw.services.audit.list(D, 5)).find((a) => a.type === 'external_keys.imported');
      assert.equal(audit?.data?.resumed, true);
      assert.deepEqual({ updated: audit?.data?.updated, removed: audit?.data?.removed, unchanged: audit?.data?.unchanged }, expectedCounts, 'the resumed import reports the counts of the whole file');

      // The same file again changes nothing but the bystander, who gets its key back.
      const again = await putCsv(csv);
      assert.equal(again.status, 200, again.text);
      assert.deepEqual({ updated: again.body.updated, removed: again.body.removed, unchanged: again.body.unchanged }, { updated: 1, removed: 0, unchanged: N - 1 });
    });
  });
});
