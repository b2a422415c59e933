import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { hashPassword } from '../../../src/domain/passwords.js';
import { loadConfig } from '../../../src/config/load.js';
import { keys } from '../../../src/store/index.js';
import { OPERATOR_AUTH, SERVICE_ORIGIN, createGateway, tenantKeyAuth, type Gateway } from '../../helpers/gateway.js';

const D = 'nosso.example';
const DAY = 24 * 3600_000;

interface Event {
  id: string;
  at: string;
  type: string;
  actor: string;
  reason?: string;
  data?: Record<string, unknown>;
}

describe('Audit trail and sign-in activity (admin API, spec §11)', () => {
  let gw: Gateway;
  const get = (path: string, query: Record<string, string | number> = {}, auth = OPERATOR_AUTH) =>
    gw.http.get(`/admin/v1/domains/${D}${path}`).query(query).set('Authorization', auth);

  before(async () => {
    gw = await createGateway({ overrides: { trustProxy: true } });
  });
  after(async () => gw.close());

  it('pages past the newest 500 with a cursor, newest first, every event once; the old capped list follows the stream', async () => {
    const domain = 'a.example';
    // Two events of the trail before the stream (a capped list, newest first).
    const old = (n: number): string => JSON.stringify({ at: new Date(gw.clock.now() - (10 - n) * 60_000).toISOString(), type: 'legacy.event', actor: 'operator', data: { n } });
    await gw.services.store.pushCapped(keys.audit(domain), old(1), 100);
    await gw.services.store.pushCapped(keys.audit(domain), old(2), 100);
    for (let i = 0; i < 1200; i++) {
      gw.clock.advance(1);
      await gw.services.audit.record({ type: 'bulk.event', domain, actor: 'operator', data: { i } });
    }
    const seen: Event[] = [];
    let cursor: string | null | undefined;
    let pages = 0;
    do {
      const res = await gw.http.get(`/admin/v1/domains/${domain}/audit`).query({ count: 500, ...(cursor ? { cursor } : {}) }).set('Authorization', OPERATOR_AUTH);
      assert.equal(res.status, 200, res.text);
      seen.push(...(res.body as { events: Event[] }).events);
      cursor = (res.body as { nextCursor: string | null }).nextCursor;
      pages++;
    } while (cursor && pages < 10);
    const bulk = seen.filter((e) => e.type === 'bulk.event').map((e) => e.data!.i);
    assert.equal(bulk.length, 1200);
    assert.deepEqual(bulk, [...Array(1200).keys()].reverse());
    assert.equal(new Set(seen.map((e) => e.id)).size, seen.length, 'no event twice');
    assert.deepEqual(seen.slice(-2).map((e) => [e.type, e.data!.n, e.id]), [['legacy.event', 2, 'legacy-0'], ['legacy.event', 1, 'legacy-1']]);
    // A bad cursor is refused.
    const bad = await gw.http.get(`/admin/v1/domains/${domain}/audit`).query({ cursor: 'x' }).set('Authorization', OPERATOR_AUTH);
    assert.equal(bad.status, 400);
    // The older API: `limit`.
    const limited = await gw.http.get(`/admin/v1/domains/${domain}/audit`).query({ limit: 3 }).set('Authorization', OPERATOR_AUTH);
    assert.equal((limited.body as { events: Event[] }).events.length, 3);
  });

  it('filters by type (exact or prefix), actor, member, result and time; a detail by id; a tenant key sees only its tenant', async () => {
    const t0 = gw.clock.now();
    await gw.services.audit.record({ type: 'member.updated', domain: D, actor: 'admin-key:k1', data: { memberId: 'm-n', fields: 'name' } });
    gw.clock.advance(60_000);
    await gw.services.audit.record({ type: 'login.failed', domain: D, actor: 'member:m-n', reason: 'password_wrong', data: { method: 'password' } });
    gw.clock.advance(60_000);
    await gw.services.audit.record({ type: 'login.succeeded', domain: D, actor: 'member:m-other', data: { method: 'password' } });
    const types = async (q: Record<string, string>): Promise<string[]> => {
      const res = await get('/audit', q);
      assert.equal(res.status, 200, res.text);
      return (res.body as { events: Event[] }).events.filter((e) => Date.parse(e.at) >= t0).map((e) => e.type);
    };
    assert.deepEqual(await types({ type: 'login.*' }), ['login.succeeded', 'login.failed']);
    assert.deepEqual(await types({ type: 'login.failed' }), ['login.failed']);
    assert.deepEqual(await types({ actor: 'admin-key:k1' }), ['member.updated']);
    assert.deepEqual(await types({ member: 'm-n' }), ['login.failed', 'member.updated']);
    assert.deepEqual(await types({ result: 'failure' }), ['login.failed']);
    assert.deepEqual(await types({ from: new Date(t0 + 30_000).toISOString(), to: new Date(t0 + 90_000).toISOString() }), ['login.failed']);
    assert.equal((await get('/audit', { from: '2030-01-02', to: '2030-01-01' })).status, 400);
    assert.equal((await get('/audit', { result: 'maybe' })).status, 400);

    const [failed] = (await get('/audit', { type: 'login.failed' })).body.events as Event[];
    const detail = await get(`/audit/${failed!.id}`);
    assert.equal(detail.status, 200);
    assert.equal((detail.body as Event).reason, 'password_wrong');
    assert.equal((await get('/audit/1-0')).status, 404);
    assert.equal((await get('/audit/nonsense')).status, 404);
    // A read-only key of another tenant: as if the tenant did not exist.
    const other = await tenantKeyAuth(gw, 'a.example', 'reader');
    assert.equal((await get('/audit', {}, other)).status, 404);
    assert.equal((await get(`/audit/${failed!.id}`, {}, other)).status, 404);
  });

  it('exports the filtered trail as CSV: BOM, header, one row per event, formula cells neutralised; the export is audited', async () => {
    await gw.services.audit.record({ type: 'csv.event', domain: D, actor: '=HYPERLINK("x")', reason: '+cmd', data: { note: 'a,b' } });
    const res = await get('/audit.csv', { type: 'csv.*' }).buffer(true).parse((r, cb) => {
      let text = '';
      r.setEncoding('utf8');
      r.on('data', (c: string) => (text += c));
      r.on('end', () => cb(null, text));
    });
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/csv/);
    assert.match(String(res.headers['content-disposition']), /attachment; filename="audit-nosso\.example\.csv"/);
    const text = res.body as string;
    assert.ok(text.startsWith('\uFEFFid,at,type,actor,result,reason,ip,requestId,data\r\n'));
    const rows = text.slice(1).trim().split('\r\n');
    assert.equal(rows.length, 2);
    assert.match(rows[1]!, /^\d+-\d+,[^,]+,csv\.event,"'=HYPERLINK\(""x""\)",failure,'\+cmd,,,"\{""note"":""a,b""\}"$/);
    const [exported] = (await get('/audit', { type: 'audit.exported' })).body.events as Event[];
    assert.equal(exported!.data!.rows, 1);
  });

  it('keeps audit.retentionDays: older events are not listed; the setting is validated at boot', async () => {
    const domain = 'b.example';
    await gw.services.audit.record({ type: 'ancient.event', domain, actor: 'operator' });
    gw.clock.advance(91 * DAY);
    await gw.services.audit.record({ type: 'fresh.event', domain, actor: 'operator' });
    const res = await gw.http.get(`/admin/v1/domains/${domain}/audit`).set('Authorization', OPERATOR_AUTH);
    const types = (res.body as { events: Event[] }).events.map((e) => e.type);
    assert.ok(types.includes('fresh.event') && !types.includes('ancient.event'), types.join());
    assert.throws(() => loadConfig({ env: { NODE_ENV: 'test', AUDIT_RETENTION_DAYS: '0' } }), /audit\.retentionDays/);
    assert.throws(() => loadConfig({ env: { NODE_ENV: 'test', AUDIT_RETENTION_DAYS: 'ninety' } }), /audit\.retentionDays/);
    assert.equal(loadConfig({ env: { NODE_ENV: 'test', AUDIT_RETENTION_DAYS: '30' } }).config.audit.retentionDays, 30);
    assert.equal(loadConfig({ env: { NODE_ENV: 'test' } }).config.audit.retentionDays, 90);
  });

  it('counts sign-ins per UTC day by protocol and result in the store, with the top refusal reasons', async () => {
    const member = await gw.services.members.findById(D, 'm-n');
    assert.ok(member);
    await gw.services.members.replace({ ...member, passwordHash: await hashPassword('Correct-horse-42') });
    const login = async (password: string, ip: string): Promise<number> => {
      const form = await gw.http.get(`/d/password-login/${D}`).query({ accessUrl: `${SERVICE_ORIGIN}/board` }).set('X-Forwarded-For', ip);
      const csrf = /name="csrf" value="([^"]+)"/.exec(form.text)![1]!;
      const cookie = ((form.headers['set-cookie'] as unknown as string[]) ?? []).find((c) => c.startsWith('idpb_csrf='))!.split(';')[0]!;
      const res = await gw.http
        .post(`/d/password-login/${D}`)
        .type('form')
        .set('X-Forwarded-For', ip)
        .set('Cookie', cookie)
        .send({ account: member.account, password, accessUrl: `${SERVICE_ORIGIN}/board`, csrf });
      return res.status;
    };
    assert.equal(await login('Correct-horse-42', '198.51.100.7'), 303);
    assert.notEqual(await login('Wrong-password-00', '198.51.100.8'), 303);
    assert.notEqual(await login('Wrong-password-00', '198.51.100.9'), 303);
    const res = await get('/activity', { days: 7 });
    assert.equal(res.status, 200, res.text);
    const body = res.body as { from: string; to: string; days: Array<{ date: string; password: { success: number; failure: number }; saml: { success: number } }>; topRefusalReasons: Array<{ reason: string; count: number }> };
    assert.equal(body.days.length, 7);
    const today = new Date(gw.clock.now()).toISOString().slice(0, 10);
    assert.equal(body.to, today);
    assert.deepEqual(body.days.at(-1)!.password, { success: 1, failure: 2 });
    assert.equal(body.topRefusalReasons[0]!.count, 2);
    // The counters live in the store with a TTL of about 32 days, not in the process.
    const ttl = await gw.services.store.pttl(keys.loginActivity(D, today));
    assert.ok(ttl > 31 * DAY && ttl <= 32 * DAY, String(ttl));
    assert.equal((await get('/activity', { days: 0 })).status, 400);
    assert.equal((await get('/activity', { days: 32 })).status, 400);
    assert.equal((await get('/activity')).body.days.length, 30);
  });
});
