/**
 * The ACS's second gate: passport-saml's MultiSamlStrategy (node-saml) validates, at the one passport
 * seam, every response the strict verifier accepted, and must agree with it on NameID, assertion ID
 * and Issuer. These tests count the gate's runs and outcomes (idpb_saml_second_gate_total).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import supertest from 'supertest';
import { AppError } from '../../../src/errors/index.js';
import { createSamlSecondGate } from '../../../src/http/passport-seam.js';
import { idps } from '../../helpers/keys.js';
import { beginLogin, createGateway, errorCodeOf, lastAuditReason, postAcs, sessionCookieOf, validResponse, type Gateway } from '../../helpers/gateway.js';

async function gateCount(gw: Gateway, result: 'agreed' | 'refused'): Promise<number> {
  const metric = await gw.services.metrics.samlSecondGate.get();
  return metric.values.find((v) => v.labels.result === result)?.value ?? 0;
}

describe('ACS second gate: passport-saml after the strict verifier', () => {
  let gw: Gateway;
  let off: Gateway;
  before(async () => {
    gw = await createGateway();
    off = await createGateway({ overrides: { saml: { secondGate: false } } });
  });
  after(async () => {
    await gw.close();
    await off.close();
  });

  it('runs on every response the strict verifier accepted, and both agree on a valid login', async () => {
    const before = await gateCount(gw, 'agreed');
    for (let i = 0; i < 2; i++) {
      const login = await beginLogin(gw, 'a.example');
      const res = await postAcs(gw, 'a.example', validResponse(gw, 'a.example', idps.a, login, 'emp-001'), login.relayState);
      assert.equal(res.status, 303, res.text);
      assert.ok(sessionCookieOf(res));
    }
    assert.equal((await gateCount(gw, 'agreed')) - before, 2);
    assert.equal(await gateCount(gw, 'refused'), 0);
  });

  it('never runs for a response the strict verifier refused', async () => {
    const before = await gateCount(gw, 'agreed');
    const login = await beginLogin(gw, 'a.example');
    const res = await postAcs(gw, 'a.example', validResponse(gw, 'a.example', idps.b, login, 'emp-001'), login.relayState);
    assert.equal(res.status, 400);
    assert.equal(errorCodeOf(res), 'saml_response_invalid');
    assert.equal(await lastAuditReason(gw, 'a.example'), 'signature_invalid');
    assert.equal(await gateCount(gw, 'agreed'), before);
    assert.equal(await gateCount(gw, 'refused'), 0);
  });

  it('can be switched off (saml.secondGate: false): logins still work, the gate never runs', async () => {
    const login = await beginLogin(off, 'a.example');
    const res = await postAcs(off, 'a.example', validResponse(off, 'a.example', idps.a, login, 'emp-001'), login.relayState);
    assert.equal(res.status, 303, res.text);
    assert.equal(await gateCount(off, 'agreed'), 0);
  });

  it('refuses when node-saml reads another identity than the strict verifier, or refuses the response itself', async () => {
    const outcomes: string[] = [];
    const gate = createSamlSecondGate(gw.services.sp, (o) => outcomes.push(o));
    const tenant = await gw.services.tenants.load('a.example');
    const login = await beginLogin(gw, 'a.example');
    const response = validResponse(gw, 'a.example', idps.a, login, 'emp-001');
    const app = express();
    app.post('/acs/:domain', express.urlencoded({ extended: false, limit: '1mb' }), async (req, res) => {
      const claimed = req.query.claim as string;
      try {
        await gate(req, res, tenant, { nameId: claimed, assertionId: req.query.aid as string, issuer: idps.a.entityId });
        res.json({ ok: true });
      } catch (err) {
        res.status(400).json({ reason: err instanceof AppError ? err.reason : 'other' });
      }
    });
    const aid = /<saml:Assertion ID="([^"]+)"/.exec(Buffer.from(response, 'base64').toString('utf8'))![1]!;
    const agreed = await supertest(app).post(`/acs/a.example?claim=emp-001&aid=${aid}`).type('form').send({ SAMLResponse: response });
    assert.deepEqual(agreed.body, { ok: true });
    const otherName = await supertest(app).post(`/acs/a.example?claim=emp-002&aid=${aid}`).type('form').send({ SAMLResponse: response });
    assert.deepEqual(otherName.body, { reason: 'second_gate_disagrees' });
    const otherId = await supertest(app).post(`/acs/a.example?claim=emp-001&aid=_other`).type('form').send({ SAMLResponse: response });
    assert.deepEqual(otherId.body, { reason: 'second_gate_disagrees' });
    const forged = Buffer.from(Buffer.from(response, 'base64').toString('utf8').replace('>emp-001<', '>emp-002<')).toString('base64');
    const refused = await supertest(app).post(`/acs/a.example?claim=emp-002&aid=${aid}`).type('form').send({ SAMLResponse: forged });
    assert.deepEqual(refused.body, { reason: 'second_gate_refused' });
    assert.deepEqual(outcomes, ['agreed', 'refused', 'refused', 'refused']);
  });
});
