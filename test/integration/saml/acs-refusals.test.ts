import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildSamlResponseXml, type SamlResponseSpec } from '../../../src/demo/saml-response.js';
import { HOSTILE_FILLERS, hostileResponse, injectIntoAssertion, limitHuggingFiller } from '../../helpers/hostile-xml.js';
import { idps } from '../../helpers/keys.js';
import {
  acsUrlOf,
  b64,
  beginLogin,
  createGateway,
  errorCodeOf,
  lastAuditReason,
  postAcs,
  responseSpec,
  sessionCookieOf,
  signed,
  validResponse,
  type Gateway,
  type StartedLogin,
} from '../../helpers/gateway.js';

/**
 * S-8 / S-9: every refusal answers 4xx with a code, creates no session, and audits the private reason.
 * Each case starts its own login (transactions are single use).
 */
describe('ACS refusals (S-8, S-9)', () => {
  let gw: Gateway;
  before(async () => {
    gw = await createGateway();
    assert.equal(gw.services.config.saml.secondGate, true, 'every case here runs with the second gate (passport-saml) on');
  });
  after(async () => gw.close());

  async function expectRefusal(
    res: { status: number; text: string; headers: Record<string, unknown> },
    code: string,
    reason: string | undefined,
    domain: string | null = 'a.example',
  ): Promise<void> {
    assert.ok(res.status >= 400 && res.status < 500, `4xx expected, got ${res.status}`);
    assert.equal(errorCodeOf(res), code);
    assert.equal(sessionCookieOf(res), undefined, 'no session is created');
    if (reason) assert.equal(await lastAuditReason(gw, domain), reason);
    // The private reason never reaches the page.
    if (reason && reason !== code) assert.ok(!res.text.includes(reason), 'reason must not be on the page');
  }

  const cases: Array<{ name: string; overrides: (login: StartedLogin) => Partial<SamlResponseSpec>; reason: string }> = [
    { name: 'wrong Audience', overrides: () => ({ audience: 'https://other-sp.example/metadata' }), reason: 'audience_mismatch' },
    { name: 'no AudienceRestriction', overrides: () => ({ audience: null }), reason: 'audience_mismatch' },
    { name: 'wrong Destination', overrides: () => ({ destination: acsUrlOf('b.example') }), reason: 'destination_mismatch' },
    { name: 'missing Destination on a signed Response', overrides: () => ({ destination: null }), reason: 'destination_mismatch' },
    { name: 'wrong Recipient', overrides: () => ({ recipient: 'https://evil.example/acs' }), reason: 'recipient_mismatch' },
    { name: 'missing Recipient', overrides: () => ({ recipient: null }), reason: 'recipient_mismatch' },
    { name: 'wrong Issuer', overrides: () => ({ issuer: 'https://some-other-idp.example' }), reason: 'issuer_mismatch' },
    { name: 'wrong InResponseTo', overrides: () => ({ inResponseTo: '_not-the-request-we-sent' }), reason: 'in_response_to_mismatch' },
    { name: 'InResponseTo missing while RelayState names a transaction', overrides: () => ({ inResponseTo: null }), reason: 'in_response_to_mismatch' },
    { name: 'non-bearer confirmation', overrides: () => ({ confirmationMethod: 'urn:oasis:names:tc:SAML:2.0:cm:holder-of-key' }), reason: 'bearer_confirmation_missing' },
    { name: 'Status not Success', overrides: () => ({ statusCode: 'urn:oasis:names:tc:SAML:2.0:status:Requester' }), reason: 'status_not_success' },
    { name: 'empty NameID', overrides: () => ({ nameId: '' }), reason: 'name_id_invalid' },
    { name: 'NameID with a control character', overrides: () => ({ nameId: 'emp-001\u0001' }), reason: 'name_id_invalid' },
    { name: 'over-long NameID', overrides: () => ({ nameId: 'x'.repeat(300) }), reason: 'name_id_invalid' },
  ];

  for (const c of cases) {
    it(`refuses ${c.name} → saml_response_invalid (${c.reason})`, async () => {
      const login = await beginLogin(gw, 'a.example');
      const res = await postAcs(gw, 'a.example', validResponse(gw, 'a.example', idps.a, login, 'emp-001', c.overrides(login)), login.relayState);
      await expectRefusal(res, 'saml_response_invalid', c.reason);
    });
  }

  describe('time (injected clock, 180 s skew)', () => {
    const at = async (offsetMs: number, field: 'notBefore' | 'notOnOrAfter' | 'subjectNotOnOrAfter', reason: string | null): Promise<void> => {
      const login = await beginLogin(gw, 'a.example');
      const now = gw.clock.now();
      const res = await postAcs(gw, 'a.example', validResponse(gw, 'a.example', idps.a, login, 'emp-001', { [field]: now + offsetMs }), login.relayState);
      if (reason === null) assert.equal(res.status, 303, res.text);
      else await expectRefusal(res, 'saml_response_invalid', reason);
    };
    it('refuses expired Conditions (NotOnOrAfter 181 s ago)', () => at(-181_000, 'notOnOrAfter', 'assertion_expired'));
    it('accepts NotOnOrAfter 179 s ago (within skew)', () => at(-179_000, 'notOnOrAfter', null));
    it('refuses not-yet-valid Conditions (NotBefore in 181 s)', () => at(181_000, 'notBefore', 'assertion_not_yet_valid'));
    it('accepts NotBefore in 179 s (within skew)', () => at(179_000, 'notBefore', null));
    it('refuses an expired SubjectConfirmationData', () => at(-200_000, 'subjectNotOnOrAfter', 'assertion_expired'));
    it('refuses a response whose validity ran out while it waited (clock moved on)', async () => {
      const login = await beginLogin(gw, 'a.example');
      const response = validResponse(gw, 'a.example', idps.a, login, 'emp-001');
      gw.clock.advance(5 * 60_000 + 181_000);
      const res = await postAcs(gw, 'a.example', response, login.relayState);
      await expectRefusal(res, 'saml_response_invalid', 'assertion_expired');
    });
  });

  it('refuses a transaction older than 30 minutes (login_transaction_invalid) and offers a fresh start', async () => {
    const login = await beginLogin(gw, 'a.example');
    gw.clock.advance(30 * 60_000);
    const res = await postAcs(gw, 'a.example', validResponse(gw, 'a.example', idps.a, login, 'emp-001'), login.relayState);
    await expectRefusal(res, 'login_transaction_invalid', 'transaction_expired');
    assert.match(res.text, /href="\/d\/login\/a\.example"/, 'the page links to a new login (a link, not a redirect loop)');
    assert.match(res.text, new RegExp(`data-request-id>${res.headers['x-request-id'] as string}<`), 'the support reference is the request id');
  });

  it('accepts a transaction just under 30 minutes old', async () => {
    const login = await beginLogin(gw, 'a.example');
    gw.clock.advance(30 * 60_000 - 1000);
    const res = await postAcs(gw, 'a.example', validResponse(gw, 'a.example', idps.a, login, 'emp-001'), login.relayState);
    assert.equal(res.status, 303, res.text);
  });

  it('refuses unknown, malformed and missing RelayState', async () => {
    for (const relayState of ['A'.repeat(32), 'not-a-transaction', '']) {
      const login = await beginLogin(gw, 'a.example');
      const res = await postAcs(gw, 'a.example', validResponse(gw, 'a.example', idps.a, login, 'emp-001'), relayState);
      assert.equal(res.status, 400);
      assert.ok(['login_transaction_invalid', 'unsolicited_response_refused'].includes(errorCodeOf(res)!), errorCodeOf(res));
      assert.equal(sessionCookieOf(res), undefined);
    }
  });

  it('refuses a replayed response (single-use transaction and assertion id)', async () => {
    const login = await beginLogin(gw, 'a.example');
    const response = validResponse(gw, 'a.example', idps.a, login, 'emp-001');
    assert.equal((await postAcs(gw, 'a.example', response, login.relayState)).status, 303);
    const again = await postAcs(gw, 'a.example', response, login.relayState);
    await expectRefusal(again, 'login_transaction_invalid', 'transaction_unknown_or_used');
  });

  it('refuses a replayed assertion where no transaction protects it (assertion id cache)', async () => {
    const xml = signed(buildSamlResponseXml(responseSpec(gw, 'unsolicited.example', idps.a, null, 'emp-001', { destination: acsUrlOf('unsolicited.example'), recipient: acsUrlOf('unsolicited.example') })), idps.a);
    // Unsolicited responses carry no transaction: only the assertion-id cache stands between them and a replay.
    assert.equal((await postAcs(gw, 'unsolicited.example', b64(xml), undefined)).status, 303);
    const again = await postAcs(gw, 'unsolicited.example', b64(xml), undefined);
    await expectRefusal(again, 'saml_response_invalid', 'assertion_replayed', 'unsolicited.example');
  });

  it('refuses an unsolicited response unless the tenant allows it (S-9)', async () => {
    const xml = signed(buildSamlResponseXml(responseSpec(gw, 'a.example', idps.a, null, 'emp-001')), idps.a);
    const res = await postAcs(gw, 'a.example', b64(xml), undefined);
    await expectRefusal(res, 'unsolicited_response_refused', 'unsolicited_refused');
    const withRelay = await postAcs(gw, 'a.example', b64(xml), 'https://board.example.net/anything');
    await expectRefusal(withRelay, 'unsolicited_response_refused', 'unsolicited_refused');
  });

  it('lands an allowed unsolicited response on the default service URL only, whatever RelayState says (S-9)', async () => {
    const xml = signed(buildSamlResponseXml(responseSpec(gw, 'unsolicited.example', idps.a, null, 'emp-001')), idps.a);
    const res = await postAcs(gw, 'unsolicited.example', b64(xml), 'https://evil.example/steal');
    assert.equal(res.status, 303, res.text);
    assert.equal(res.headers.location, 'https://board.example.net/home');
  });

  it("refuses tenant B's IdP response posted to tenant A's ACS", async () => {
    const loginA = await beginLogin(gw, 'a.example');
    // B's IdP, B's member, everything addressed to A: only the key is wrong.
    const res = await postAcs(gw, 'a.example', validResponse(gw, 'a.example', idps.b, loginA, 'emp-001', { issuer: idps.a.entityId }), loginA.relayState);
    await expectRefusal(res, 'saml_response_invalid', 'signature_invalid');
  });

  it("refuses a response to B's login posted to A's ACS (transaction of another tenant)", async () => {
    const loginB = await beginLogin(gw, 'b.example');
    const res = await postAcs(gw, 'a.example', validResponse(gw, 'b.example', idps.b, loginB, 'user1@b.example'), loginB.relayState);
    await expectRefusal(res, 'login_transaction_invalid', 'transaction_unknown_or_used');
    // …and B's transaction was not burnt by the attempt at A: B can still finish.
    const ok = await postAcs(gw, 'b.example', validResponse(gw, 'b.example', idps.b, loginB, 'user1@b.example'), loginB.relayState);
    assert.equal(ok.status, 303, ok.text);
  });

  describe('hostile bodies', () => {
    const raw = async (xml: string, relay?: string): Promise<{ status: number; text: string; headers: Record<string, unknown> }> => {
      const login = relay ? null : await beginLogin(gw, 'a.example');
      return postAcs(gw, 'a.example', b64(xml), relay ?? login!.relayState);
    };

    it('refuses a DOCTYPE with entities (XXE / billion laughs)', async () => {
      const login = await beginLogin(gw, 'a.example');
      const good = signed(buildSamlResponseXml(responseSpec(gw, 'a.example', idps.a, login.requestId, 'emp-001')), idps.a);
      const xxe = `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>${good}`;
      await expectRefusal(await postAcs(gw, 'a.example', b64(xxe), login.relayState), 'saml_response_invalid', 'doctype_refused');
      const laughs = `<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&b;</samlp:Response>`;
      await expectRefusal(await raw(laughs), 'saml_response_invalid', 'doctype_refused');
    });

    it('refuses malformed XML, non-Response roots and non-base64', async () => {
      await expectRefusal(await raw('<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"><unclosed>'), 'saml_response_invalid', 'xml_malformed');
      await expectRefusal(await raw('<foo/>'), 'saml_response_invalid', 'not_a_response');
      const login = await beginLogin(gw, 'a.example');
      await expectRefusal(await postAcs(gw, 'a.example', '%%%not base64%%%', login.relayState), 'saml_response_invalid', 'response_not_base64');
      await expectRefusal(await postAcs(gw, 'a.example', undefined, login.relayState), 'saml_response_invalid', 'response_missing');
    });

    it('refuses a response with two assertions', async () => {
      const login = await beginLogin(gw, 'a.example');
      const spec = responseSpec(gw, 'a.example', idps.a, login.requestId, 'emp-001');
      const one = signed(buildSamlResponseXml(spec), idps.a, 'assertion');
      const assertion = /<saml:Assertion[\s\S]*<\/saml:Assertion>/.exec(one)![0];
      const two = one.replace('</samlp:Response>', `${assertion.replace(/ID="[^"]+"/, 'ID="_second"')}</samlp:Response>`);
      await expectRefusal(await postAcs(gw, 'a.example', b64(two), login.relayState), 'saml_response_invalid', 'multiple_assertions');
    });

    it('refuses an oversized body with 413 payload_too_large and stays up', async () => {
      const login = await beginLogin(gw, 'a.example');
      const huge = 'A'.repeat(300 * 1024);
      const res = await postAcs(gw, 'a.example', huge, login.relayState);
      assert.equal(res.status, 413);
      assert.equal(errorCodeOf(res), 'payload_too_large');
      assert.equal((await gw.http.get('/healthz')).status, 200);
    });

    it('refuses an encrypted assertion (no decryption key configured)', async () => {
      const xml = `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r" Version="2.0" IssueInstant="2026-01-01T00:00:00Z" InResponseTo="_x"><saml:EncryptedAssertion/></samlp:Response>`;
      await expectRefusal(await raw(xml), 'saml_response_invalid', 'encrypted_assertion_unsupported');
    });

    it('answers array-shaped and odd form fields with 4xx, never 5xx', async () => {
      const login = await beginLogin(gw, 'a.example');
      const res = await gw.http.post('/acs/a.example').type('form').send(`SAMLResponse=a&SAMLResponse=b&RelayState=${login.relayState}`);
      assert.ok(res.status >= 400 && res.status < 500, String(res.status));
      const json = await gw.http.post('/acs/a.example').set('Content-Type', 'application/json').send('{"SAMLResponse":1}');
      assert.ok(json.status >= 400 && json.status < 500, String(json.status));
      const unknown = await postAcs(gw, 'nope.example', 'AAAA', login.relayState);
      assert.equal(unknown.status, 404);
      assert.equal(errorCodeOf(unknown), 'tenant_not_found');
      const nosso = await postAcs(gw, 'nosso.example', 'AAAA', login.relayState);
      assert.equal(nosso.status, 400);
      assert.equal(errorCodeOf(nosso), 'sso_not_enabled');
    });
  });

  describe('hostile documents (bounded cost)', () => {
    it('without a live transaction, refuses before the XML is parsed', async () => {
      for (const [name, filler] of Object.entries(HOSTILE_FILLERS)) {
        const res = await postAcs(gw, 'a.example', b64(hostileResponse(filler(120_000))), 'A'.repeat(32));
        await expectRefusal(res, 'login_transaction_invalid', 'transaction_unknown_or_used');
        assert.ok(name);
      }
    });

    it('with a live transaction, refuses deep, namespace-heavy, wide and oversized shapes inside the signed assertion by the structural limits', async () => {
      for (const [name, filler] of Object.entries(HOSTILE_FILLERS)) {
        if (name === 'at the limits') continue;
        const login = await beginLogin(gw, 'a.example');
        const xml = signed(buildSamlResponseXml(responseSpec(gw, 'a.example', idps.a, login.requestId, 'emp-001')), idps.a, 'assertion');
        const res = await postAcs(gw, 'a.example', b64(injectIntoAssertion(xml, filler(120_000))), login.relayState);
        await expectRefusal(res, 'saml_response_invalid', 'xml_too_complex');
      }
    });

    it('a document at the limits still parses, and fails only at the digest of the altered assertion', async () => {
      const login = await beginLogin(gw, 'a.example');
      const xml = signed(buildSamlResponseXml(responseSpec(gw, 'a.example', idps.a, login.requestId, 'emp-001')), idps.a, 'assertion');
      const res = await postAcs(gw, 'a.example', b64(injectIntoAssertion(xml, limitHuggingFiller(120_000))), login.relayState);
      await expectRefusal(res, 'saml_response_invalid', 'signature_invalid');
    });
  });

  describe('assertion age', () => {
    it('refuses an assertion issued long ago even when its Conditions still allow it', async () => {
      const login = await beginLogin(gw, 'a.example');
      const issued = gw.clock.now() - 3 * 3600_000;
      const res = await postAcs(gw, 'a.example', validResponse(gw, 'a.example', idps.a, login, 'emp-001', { now: issued, validForMs: 86_400_000, notBefore: issued }), login.relayState);
      await expectRefusal(res, 'saml_response_invalid', 'assertion_too_old');
    });

    it('accepts an assertion issued four minutes ago, and refuses one issued in the future beyond the skew', async () => {
      const ok = await beginLogin(gw, 'a.example');
      const res = await postAcs(gw, 'a.example', validResponse(gw, 'a.example', idps.a, ok, 'emp-001', { now: gw.clock.now() - 4 * 60_000, validForMs: 3600_000 }), ok.relayState);
      assert.equal(res.status, 303, res.text);
      const future = await beginLogin(gw, 'a.example');
      const ahead = gw.clock.now() + 3600_000;
      const res2 = await postAcs(gw, 'a.example', validResponse(gw, 'a.example', idps.a, future, 'emp-001', { now: ahead, notBefore: gw.clock.now() - 1000 }), future.relayState);
      await expectRefusal(res2, 'saml_response_invalid', 'assertion_not_yet_valid');
    });
  });

  it('never wrote a SAMLResponse, RelayState or NameID into the logs', () => {
    const text = gw.logText();
    assert.ok(!text.includes('PHNhbWxwOlJlc3BvbnNl'), 'base64 of <samlp:Response must not be logged');
    assert.ok(!/"RelayState":"[A-Za-z0-9_-]{32}"/.test(text));
    assert.ok(!text.includes('emp-001'), 'asserted identifiers stay out of logs');
  });
});

