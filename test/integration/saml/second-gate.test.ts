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
import { DIGEST_SHA1, SIG_RSA_SHA1, buildSamlResponseXml } from '../../../src/demo/saml-response.js';
import { idps } from '../../helpers/keys.js';
import { b64, beginLogin, createGateway, errorCodeOf, lastAuditReason, postAcs, responseSpec, sessionCookieOf, signed, validResponse, type Gateway } from '../../helpers/gateway.js';

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

  describe('the two gates disagree: the login is refused', () => {
    it('the strict verifier accepts, node-saml refuses (made to want a signed Response): refused, second_gate_refused, no session', async () => {
      const strictResponse = await createGateway({ samlSecondGateOptions: (options) => ({ ...options, wantAuthnResponseSigned: true }) });
      try {
        const login = await beginLogin(strictResponse, 'a.example');
        const xml = signed(buildSamlResponseXml(responseSpec(strictResponse, 'a.example', idps.a, login.requestId, 'emp-001')), idps.a, 'assertion');
        const res = await postAcs(strictResponse, 'a.example', b64(xml), login.relayState);
        assert.equal(res.status, 400, res.text);
        assert.equal(errorCodeOf(res), 'saml_response_invalid');
        assert.equal(sessionCookieOf(res), undefined);
        assert.equal(await lastAuditReason(strictResponse, 'a.example'), 'second_gate_refused');
        assert.equal(await gateCount(strictResponse, 'refused'), 1);
        assert.equal(await gateCount(strictResponse, 'agreed'), 0);
        // Control: what that node-saml accepts (a signed Response) logs in, so the refusal above was the gate's.
        const control = await beginLogin(strictResponse, 'a.example');
        const ok = await postAcs(strictResponse, 'a.example', validResponse(strictResponse, 'a.example', idps.a, control, 'emp-001'), control.relayState);
        assert.equal(ok.status, 303, ok.text);
        assert.equal(await gateCount(strictResponse, 'agreed'), 1);
      } finally {
        await strictResponse.close();
      }
    });

    it('node-saml would accept, the strict verifier refuses (RSA-SHA1 for a tenant without allowSha1; a broken Response signature around a good assertion): refused, node-saml never asked', async () => {
      const outcomes: string[] = [];
      const gate = createSamlSecondGate(gw.services.sp, (o) => outcomes.push(o));
      const tenant = await gw.services.tenants.load('a.example');
      const direct = express();
      direct.post('/acs/:domain', express.urlencoded({ extended: false, limit: '1mb' }), async (req, res) => {
        try {
          await gate(req, res, tenant, { nameId: 'emp-001', assertionId: req.query.aid as string, issuer: idps.a.entityId });
          res.json({ ok: true });
        } catch (err) {
          res.status(400).json({ reason: err instanceof AppError ? err.reason : 'other' });
        }
      });
      const cases: Array<[string, (xml: string) => string, string]> = [
        ['RSA-SHA1', (xml) => signed(xml, idps.a, 'both', { signatureAlgorithm: SIG_RSA_SHA1, digestAlgorithm: DIGEST_SHA1 }), 'weak_algorithm'],
        // The Response signature value no longer verifies; the assertion's does (node-saml then falls back to it).
        ['broken Response signature', (xml) => signed(xml, idps.a, 'both').replace(/(<samlp:Response\b[\s\S]*?<ds:SignatureValue>)([A-Za-z0-9+/])/, (_m, head: string, c: string) => `${head}${c === 'A' ? 'B' : 'A'}`), 'signature_invalid'],
      ];
      for (const [label, make, reason] of cases) {
        const before = { agreed: await gateCount(gw, 'agreed'), refused: await gateCount(gw, 'refused') };
        const login = await beginLogin(gw, 'a.example');
        const xml = make(buildSamlResponseXml(responseSpec(gw, 'a.example', idps.a, login.requestId, 'emp-001')));
        const aid = /<saml:Assertion ID="([^"]+)"/.exec(xml)![1]!;
        const alone = await supertest(direct).post(`/acs/a.example?aid=${aid}`).type('form').send({ SAMLResponse: b64(xml) });
        assert.deepEqual(alone.body, { ok: true }, `${label}: node-saml alone accepts it and reads the same identity`);

        const res = await postAcs(gw, 'a.example', b64(xml), login.relayState);
        assert.equal(res.status, 400, `${label}: ${res.text}`);
        assert.equal(errorCodeOf(res), 'saml_response_invalid');
        assert.equal(sessionCookieOf(res), undefined);
        assert.equal(await lastAuditReason(gw, 'a.example'), reason, label);
        assert.deepEqual({ agreed: await gateCount(gw, 'agreed'), refused: await gateCount(gw, 'refused') }, before, `${label}: the gateway's node-saml never ran`);
      }
      assert.deepEqual(outcomes, ['agreed', 'agreed']);
    });
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
