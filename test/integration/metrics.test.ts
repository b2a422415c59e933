import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RedisStore } from '../../src/store/index.js';
import { OPERATOR_AUTH, beginLogin, createGateway, postAcs, validResponse, type Gateway } from '../helpers/gateway.js';
import { idps } from '../helpers/keys.js';
import { freePort } from '../helpers/redis.js';

/** The value of one sample of the exposition text, e.g. sample(text, 'idpb_logins_total', {domain: 'a.example'}). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const labelText = line.slice(name.length).split(' ')[0]!;
    if (Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('GET /metrics (Prometheus, docs/spec.md §12)', () => {
  let gw: Gateway;
  const nameId = 'emp-001';

  before(async () => {
    gw = await createGateway();
  });
  after(async () => {
    await gw.close();
  });

  it('counts logins by tenant, type and result, and times the ACS', async () => {
    const login = await beginLogin(gw, 'a.example');
    const ok = await postAcs(gw, 'a.example', validResponse(gw, 'a.example', idps.a, login, nameId), login.relayState);
    assert.equal(ok.status, 303);
    const refused = await postAcs(gw, 'a.example', validResponse(gw, 'a.example', idps.b, await beginLogin(gw, 'a.example'), nameId), undefined);
    assert.equal(refused.status, 400);

    const res = await gw.http.get('/metrics');
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    assert.equal(sample(res.text, 'idpb_logins_total', { domain: 'a.example', type: 'saml', result: 'success' }), 1);
    assert.equal(sample(res.text, 'idpb_logins_total', { domain: 'a.example', type: 'saml', result: 'failure' }), 1);
    assert.equal(sample(res.text, 'idpb_acs_duration_seconds_count', { result: 'success' }), 1);
    assert.equal(sample(res.text, 'idpb_acs_duration_seconds_count', { result: 'failure' }), 1);
    assert.equal(sample(res.text, 'idpb_login_transactions_total', { type: 'saml' }), 2, 'one stored transaction per login started');
    assert.ok((sample(res.text, 'idpb_http_request_duration_seconds_count', { route: '/acs/:domain', status_class: '3xx' }) ?? 0) >= 1);
    assert.ok(!res.text.includes(nameId), 'no NameID in the metrics');
  });

  it('labels unmatched paths as one series, whatever a scanner requests', async () => {
    for (const path of ['/wp-admin', '/.env', '/a/b/c']) assert.equal((await gw.http.get(path)).status, 404);
    const text = (await gw.http.get('/metrics')).text;
    assert.ok(!text.includes('wp-admin') && !text.includes('.env'));
    assert.ok((sample(text, 'idpb_http_request_duration_seconds_count', { route: 'unmatched', status_class: '4xx' }) ?? 0) >= 3);
  });

  it('counts MDM check results per tenant', async () => {
    const tenant = (await gw.services.tenants.find('a.example'))!;
    await gw.services.tenants.save({ ...tenant, plan: 'standard' });
    const on = await gw.http.put('/admin/v1/domains/a.example/mdm').set('authorization', OPERATOR_AUTH).send({ mode: 'external' });
    assert.equal(on.status, 200, on.text);
    const check = (code?: string) => gw.http.post('/mobile/mdm/check').set('x-device-id', 'metrics-device').set(code ? { 'x-mdm-auth-code': code } : {}).send({ domain: 'a.example' });
    assert.equal((await check(on.body.key.value)).status, 200);
    assert.equal((await check()).status, 403);
    const text = (await gw.http.get('/metrics')).text;
    assert.equal(sample(text, 'idpb_mdm_checks_total', { domain: 'a.example', result: 'ok' }), 1);
    assert.equal(sample(text, 'idpb_mdm_checks_total', { domain: 'a.example', result: 'mdm_code_required' }), 1);
    assert.ok(!text.includes(on.body.key.value), 'no MDM code in the metrics');
  });

  it('counts requests answered store_unavailable', async () => {
    const deadStore = new RedisStore({ url: `redis://127.0.0.1:${await freePort()}`, commandTimeoutMs: 500 });
    const down = await createGateway({ store: deadStore });
    try {
      assert.equal((await down.http.get('/d/login/a.example')).status, 503);
      assert.equal((await down.http.get('/readyz')).status, 503);
      const text = (await down.http.get('/metrics')).text;
      assert.equal(sample(text, 'idpb_store_errors_total', { source: 'request' }), 2);
    } finally {
      await deadStore.close();
      await down.close();
    }
  });

  it('requires the bearer token when metrics.bearerToken is set (constant-time compare)', async () => {
    const guarded = await createGateway({ overrides: { metrics: { enabled: true, bearerToken: 'scrape-token-0123456789' } } });
    try {
      assert.equal((await guarded.http.get('/metrics')).status, 401);
      assert.equal((await guarded.http.get('/metrics').set('authorization', 'Bearer wrong-token-0123456789')).status, 401);
      assert.equal((await guarded.http.get('/metrics').set('authorization', 'Bearer scrape-token-0123456789')).status, 200);
    } finally {
      await guarded.close();
    }
    const off = await createGateway({ overrides: { metrics: { enabled: false } } });
    try {
      assert.equal((await off.http.get('/metrics')).status, 404);
    } finally {
      await off.close();
    }
  });
});
