import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createGateway, errorCodeOf, type Gateway } from '../helpers/gateway.js';
import { OPEN_REDIRECT_SHAPES } from '../fixtures/open-redirect-shapes.js';

describe('GET /d/login/{domain} refuses open redirects over HTTP (S-5)', () => {
  let gw: Gateway;
  before(async () => {
    gw = await createGateway();
  });
  after(async () => gw.close());

  it('answers 400 invalid_access_url for every shape, creating no transaction', async () => {
    for (const [name, shape] of OPEN_REDIRECT_SHAPES) {
      const res = await gw.http.get(`/d/login/a.example?accessUrl=${encodeURIComponent(shape)}`);
      assert.equal(res.status, 400, `${name}: ${res.status}`);
      assert.equal(errorCodeOf(res), 'invalid_access_url', name);
      assert.equal(res.headers.location, undefined, name);
    }
    // Nothing was stored for any refused attempt.
    assert.equal(await gw.countKeys('idpb:{a.example}:txn:*'), 0);
  });

  it('refuses a repeated accessUrl parameter', async () => {
    const res = await gw.http.get('/d/login/a.example?accessUrl=https%3A%2F%2Fboard.example.net%2F&accessUrl=https%3A%2F%2Fevil.example%2F');
    assert.equal(res.status, 400);
    assert.equal(errorCodeOf(res), 'invalid_access_url');
  });

  it("accepts the tenant's own serviceOrigins but not another tenant's", async () => {
    const ok = await gw.http.get('/d/login/a.example').query({ accessUrl: 'https://intranet.a.example/x' });
    assert.equal(ok.status, 302);
    const other = await gw.http.get('/d/login/b.example').query({ accessUrl: 'https://intranet.a.example/x' });
    assert.equal(other.status, 400);
    assert.equal(errorCodeOf(other), 'invalid_access_url');
  });
});
