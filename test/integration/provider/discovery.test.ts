import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { OP_PATH } from '../../../src/provider/provider.js';
import { createGateway, type Gateway } from '../../helpers/gateway.js';

/** The OP's discovery names only what a client can use: the authorization code flow (and refresh). */
describe("the OP's discovery document", () => {
  let gw: Gateway;
  before(async () => {
    gw = await createGateway();
  });
  after(async () => gw.close());

  it('advertises response type code only, and no implicit grant', async () => {
    const res = await gw.http.get(`${OP_PATH}/.well-known/openid-configuration`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.response_types_supported, ['code']);
    assert.deepEqual([...(res.body.grant_types_supported as string[])].sort(), ['authorization_code', 'refresh_token']);
  });

  it('refuses an id_token (implicit) authorization request from a registered client', async () => {
    const res = await gw.http
      .get(`${OP_PATH}/auth`)
      .query({ client_id: 'mobile', response_type: 'id_token', scope: 'openid', nonce: 'n-0123456789', redirect_uri: 'idpbridge.mobile:/oauth2redirect' });
    const where = `${String(res.headers.location ?? '')} ${res.text}`;
    assert.match(where, /unsupported_response_type/, `${res.status}: ${where.slice(0, 300)}`);
  });
});
