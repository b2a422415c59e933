/**
 * Encrypted assertions (issue 14 §2): the IdP signs the assertion, then encrypts it to the SP's
 * encryption certificate (xml-encryption, auth0's library, plays the IdP's encryptor; samlify is a whole
 * IdP the project did not write). The decrypted assertion goes through every ACS check and the second
 * gate (node-saml, given the key that opened it).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as samlify from 'samlify';
import { buildSamlResponseXml } from '../../../src/demo/saml-response.js';
import { ALG, encryptAssertionIn, encryptAssertionXmlenc11, spEncryptionKeys } from '../../helpers/encrypt-assertion.js';
import {
  SP_ENTITY_ID,
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
  type Gateway,
  type StartedLogin,
} from '../../helpers/gateway.js';
import { idps } from '../../helpers/keys.js';

samlify.setSchemaValidator({ validate: () => Promise.resolve('schema validation skipped: samlify only produces responses here') });

const decryption = (next = true): Record<string, unknown> => ({
  saml: {
    decryption: {
      keyFile: spEncryptionKeys.current.keyFile,
      certFile: spEncryptionKeys.current.certFile,
      ...(next ? { nextKeyFile: spEncryptionKeys.next.keyFile, nextCertFile: spEncryptionKeys.next.certFile } : {}),
    },
  },
});

async function secondGateCount(gw: Gateway, result: 'agreed' | 'refused'): Promise<number> {
  const metric = await gw.services.metrics.samlSecondGate.get();
  return metric.values.find((v) => v.labels.result === result)?.value ?? 0;
}

/** A response for the login just begun, the assertion signed by IdP A and then encrypted. */
async function encryptedResponse(gw: Gateway, login: StartedLogin, certificate: string, content: string, nameId = 'emp-001'): Promise<string> {
  const xml = signed(buildSamlResponseXml(responseSpec(gw, 'a.example', idps.a, login.requestId, nameId)), idps.a, 'assertion');
  return b64(await encryptAssertionIn(xml, { certificate, content }));
}

describe('ACS: encrypted assertions', () => {
  let gw: Gateway;
  let noKeys: Gateway;
  let single: Gateway;
  before(async () => {
    gw = await createGateway({ overrides: decryption() });
    noKeys = await createGateway();
    single = await createGateway({ overrides: decryption(false) });
  });
  after(async () => {
    await gw.close();
    await noKeys.close();
    await single.close();
  });

  for (const [name, content] of [
    ['AES-256-GCM', ALG.aes256gcm],
    ['AES-128-CBC', ALG.aes128cbc],
    ['AES-128-GCM', ALG.aes128gcm],
    ['AES-256-CBC', ALG.aes256cbc],
  ] as const) {
    it(`accepts an assertion encrypted with ${name} (RSA-OAEP-MGF1P key transport), and both gates agree`, async () => {
      const agreed = await secondGateCount(gw, 'agreed');
      const login = await beginLogin(gw, 'a.example');
      const response = await encryptedResponse(gw, login, spEncryptionKeys.current.certificate, content);
      const xml = Buffer.from(response, 'base64').toString('utf8');
      assert.match(xml, new RegExp(`EncryptionMethod Algorithm="${content}"`));
      assert.doesNotMatch(xml, /<saml:Assertion[\s>]/, 'no plaintext assertion travels');
      const res = await postAcs(gw, 'a.example', response, login.relayState);
      assert.equal(res.status, 303, `${res.text.slice(0, 200)} ${String(await lastAuditReason(gw, 'a.example'))}`);
      assert.ok(sessionCookieOf(res));
      assert.equal((await secondGateCount(gw, 'agreed')) - agreed, 1, 'node-saml decrypted and accepted it too');
    });
  }

  it('xmlenc11#rsa-oaep (SHA-256, MGF1-SHA1; Shibboleth\'s layout) is accepted, and node-saml checks it too on the re-wrapped key', async () => {
    const agreed = await secondGateCount(gw, 'agreed');
    const login = await beginLogin(gw, 'a.example');
    const xml = signed(buildSamlResponseXml(responseSpec(gw, 'a.example', idps.a, login.requestId, 'emp-001')), idps.a, 'assertion');
    const res = await postAcs(gw, 'a.example', b64(encryptAssertionXmlenc11(xml, spEncryptionKeys.next.certFile, 'aes-128-gcm')), login.relayState);
    assert.equal(res.status, 303, `${res.text.slice(0, 200)} ${String(await lastAuditReason(gw, 'a.example'))}`);
    assert.equal((await secondGateCount(gw, 'agreed')) - agreed, 1);
  });

  it('a large encrypted assertion (Entra ID with 300 group claims: CipherValue past the 65,536-character text limit) is accepted; a CipherValue past its own limit is refused with a 4xx', async () => {
    const groups = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`http://schemas.microsoft.com/ws/2008/06/identity/claims/groups/${i}`, `0b6c5e9a-${String(i).padStart(4, '0')}-4c1e-9d7f-2f0c1a3b4d5e`]));
    const login = await beginLogin(gw, 'a.example');
    const xml = signed(buildSamlResponseXml(responseSpec(gw, 'a.example', idps.a, login.requestId, 'emp-001', { attributes: groups })), idps.a, 'assertion');
    const encrypted = await encryptAssertionIn(xml, { certificate: spEncryptionKeys.current.certificate, content: ALG.aes256gcm });
    const cipherValue = Math.max(...[...encrypted.matchAll(/<xenc:CipherValue>([^<]+)</g)].map((m) => m[1]!.length));
    assert.ok(cipherValue > 65_536, `CipherValue of ${cipherValue} characters`);
    const res = await postAcs(gw, 'a.example', b64(encrypted), login.relayState);
    assert.equal(res.status, 303, `${res.text.slice(0, 200)} ${String(await lastAuditReason(gw, 'a.example'))}`);

    const big = await createGateway({ overrides: { ...decryption(false), saml: { ...(decryption(false).saml as object), maxResponseBytes: 1_000_000 } } });
    try {
      const again = await beginLogin(big, 'a.example');
      const oversize = encrypted.replace(/(<xenc:CipherValue>)([^<]{70000,})</, (_m, open: string, value: string) => `${open}${value}${'A'.repeat(270_000 - value.length)}<`);
      const refused = await postAcs(big, 'a.example', b64(oversize), again.relayState);
      assert.equal(refused.status, 400);
      assert.equal(await lastAuditReason(big, 'a.example'), 'xml_too_complex');
    } finally {
      await big.close();
    }
  });

  it('a Response signed over the EncryptedAssertion (sign, encrypt, sign) is accepted by both gates; changing the EncryptedAssertion after that breaks the Response signature', async () => {
    const agreed = await secondGateCount(gw, 'agreed');
    const login = await beginLogin(gw, 'a.example');
    const inner = signed(buildSamlResponseXml(responseSpec(gw, 'a.example', idps.a, login.requestId, 'emp-001')), idps.a, 'assertion');
    const encrypted = await encryptAssertionIn(inner, { certificate: spEncryptionKeys.current.certificate, content: ALG.aes256gcm });
    const outer = signed(encrypted, idps.a, 'response');
    assert.equal((outer.match(/<ds:Signature[\s>]/g) ?? []).length, 1, 'one visible signature: the Response one');
    const res = await postAcs(gw, 'a.example', b64(outer), login.relayState);
    assert.equal(res.status, 303, `${res.text.slice(0, 200)} ${String(await lastAuditReason(gw, 'a.example'))}`);
    assert.equal((await secondGateCount(gw, 'agreed')) - agreed, 1);

    // The same Response signature over another EncryptedAssertion (one encrypted to the next key): refused.
    const again = await beginLogin(gw, 'a.example');
    const first = signed(await encryptAssertionIn(signed(buildSamlResponseXml(responseSpec(gw, 'a.example', idps.a, again.requestId, 'emp-001')), idps.a, 'assertion'), { certificate: spEncryptionKeys.current.certificate, content: ALG.aes256gcm }), idps.a, 'response');
    const swapped = await encryptAssertionIn(signed(buildSamlResponseXml(responseSpec(gw, 'a.example', idps.a, again.requestId, 'emp-002')), idps.a, 'assertion'), { certificate: spEncryptionKeys.next.certificate, content: ALG.aes256gcm });
    const enc = (x: string): string => /<saml:EncryptedAssertion>[\s\S]*<\/saml:EncryptedAssertion>/.exec(x)![0];
    const forged = first.replace(enc(first), () => enc(swapped));
    const refused = await postAcs(gw, 'a.example', b64(forged), again.relayState);
    assert.equal(refused.status, 400);
    assert.equal(await lastAuditReason(gw, 'a.example'), 'signature_invalid');
  });

  it('key rollover: an assertion encrypted to the next key is accepted while both are configured; to an unknown key, refused', async () => {
    const login = await beginLogin(gw, 'a.example');
    const res = await postAcs(gw, 'a.example', await encryptedResponse(gw, login, spEncryptionKeys.next.certificate, ALG.aes256gcm), login.relayState);
    assert.equal(res.status, 303, res.text.slice(0, 200));

    const stranger = await beginLogin(gw, 'a.example');
    const refused = await postAcs(gw, 'a.example', await encryptedResponse(gw, stranger, spEncryptionKeys.stranger.certificate, ALG.aes256gcm), stranger.relayState);
    assert.equal(refused.status, 400);
    assert.equal(errorCodeOf(refused), 'saml_response_invalid');
    assert.equal(await lastAuditReason(gw, 'a.example'), 'decryption_failed');
  });

  it('with the current key only, an assertion encrypted to the next key is refused', async () => {
    const login = await beginLogin(single, 'a.example');
    const res = await postAcs(single, 'a.example', await encryptedResponse(single, login, spEncryptionKeys.next.certificate, ALG.aes128cbc), login.relayState);
    assert.equal(res.status, 400);
    assert.equal(await lastAuditReason(single, 'a.example'), 'decryption_failed');
  });

  // GCM authenticates the content and OAEP the wrapped key: any flipped bit fails decryption. CBC is
  // malleable: a flipped bit garbles one block of the plaintext, which the XML parser or the assertion's
  // signature then refuses (a block inside the ignored KeyInfo would even go unnoticed, harmlessly).
  it('refuses tampered ciphertext (content and wrapped key) with a 4xx, never a 500', async () => {
    for (const [label, content, target, reasons] of [
      ['GCM content', ALG.aes256gcm, 'data', ['decryption_failed']],
      ['CBC content, first block', ALG.aes128cbc, 'data', ['xml_malformed', 'signature_invalid', 'decryption_failed']],
      ['wrapped key', ALG.aes256gcm, 'key', ['decryption_failed']],
    ] as const) {
      const login = await beginLogin(gw, 'a.example');
      const xml = Buffer.from(await encryptedResponse(gw, login, spEncryptionKeys.current.certificate, content), 'base64').toString('utf8');
      const values = [...xml.matchAll(/<xenc:CipherValue>([^<]+)<\/xenc:CipherValue>/g)];
      // xml-encryption writes the EncryptedKey (inside KeyInfo) before the content's CipherValue.
      const value = target === 'key' ? values[0]! : values.at(-1)!;
      const bytes = Buffer.from(value[1]!, 'base64');
      // The GCM and key ciphertexts in their middle; CBC in its first block after the IV.
      bytes[label.startsWith('CBC') ? 20 : Math.floor(bytes.length / 2)]! ^= 0x01;
      const tampered = xml.replace(value[1]!, bytes.toString('base64'));
      const res = await postAcs(gw, 'a.example', b64(tampered), login.relayState);
      assert.equal(res.status, 400, label);
      assert.equal(errorCodeOf(res), 'saml_response_invalid', label);
      const reason = await lastAuditReason(gw, 'a.example');
      assert.ok((reasons as readonly string[]).includes(reason ?? ''), `${label}: ${String(reason)}`);
    }
  });

  it('refuses RSA 1.5 key transport as an unsupported algorithm', async () => {
    const login = await beginLogin(gw, 'a.example');
    const xml = signed(buildSamlResponseXml(responseSpec(gw, 'a.example', idps.a, login.requestId, 'emp-001')), idps.a, 'assertion');
    const encrypted = await encryptAssertionIn(xml, { certificate: spEncryptionKeys.current.certificate, content: ALG.aes256cbc, keyTransport: ALG.rsa15 });
    const res = await postAcs(gw, 'a.example', b64(encrypted), login.relayState);
    assert.equal(res.status, 400);
    assert.equal(await lastAuditReason(gw, 'a.example'), 'encryption_algorithm_unsupported');
  });

  it('an encrypted assertion whose inner signature is broken is refused by the signature check', async () => {
    const login = await beginLogin(gw, 'a.example');
    const xml = signed(buildSamlResponseXml(responseSpec(gw, 'a.example', idps.a, login.requestId, 'emp-001')), idps.a, 'assertion').replace('>emp-001<', '>emp-002<');
    const res = await postAcs(gw, 'a.example', b64(await encryptAssertionIn(xml, { certificate: spEncryptionKeys.current.certificate, content: ALG.aes256gcm })), login.relayState);
    assert.equal(res.status, 400);
    assert.equal(await lastAuditReason(gw, 'a.example'), 'signature_invalid');
  });

  it('refuses a replayed encrypted assertion', async () => {
    const login = await beginLogin(gw, 'a.example');
    const response = await encryptedResponse(gw, login, spEncryptionKeys.current.certificate, ALG.aes256gcm);
    assert.equal((await postAcs(gw, 'a.example', response, login.relayState)).status, 303);
    const again = await beginLogin(gw, 'a.example');
    const xml = Buffer.from(response, 'base64').toString('utf8').replaceAll(login.requestId, again.requestId);
    // Same assertion (same ID) posted for a new login: the InResponseTo inside is the old one, so it is refused either way.
    const res = await postAcs(gw, 'a.example', b64(xml), again.relayState);
    assert.equal(res.status, 400);
  });

  it('without a decryption key an EncryptedAssertion is refused as unsupported', async () => {
    const login = await beginLogin(noKeys, 'a.example');
    const res = await postAcs(noKeys, 'a.example', await encryptedResponse(noKeys, login, spEncryptionKeys.current.certificate, ALG.aes256gcm), login.relayState);
    assert.equal(res.status, 400);
    assert.equal(await lastAuditReason(noKeys, 'a.example'), 'encrypted_assertion_unsupported');
  });

  it('requireEncryptedAssertions refuses a plaintext assertion with its true reason, and accepts an encrypted one', async () => {
    const tenant = await gw.services.tenants.load('a.example');
    await gw.services.tenants.save({ ...tenant, sso: { ...tenant.sso, saml: { ...tenant.sso.saml!, requireEncryptedAssertions: true } } });
    try {
      const login = await beginLogin(gw, 'a.example');
      const plain = b64(signed(buildSamlResponseXml(responseSpec(gw, 'a.example', idps.a, login.requestId, 'emp-001')), idps.a));
      const res = await postAcs(gw, 'a.example', plain, login.relayState);
      assert.equal(res.status, 400);
      assert.equal(errorCodeOf(res), 'saml_response_invalid');
      assert.equal(await lastAuditReason(gw, 'a.example'), 'assertion_not_encrypted');

      const again = await beginLogin(gw, 'a.example');
      const ok = await postAcs(gw, 'a.example', await encryptedResponse(gw, again, spEncryptionKeys.current.certificate, ALG.aes128gcm), again.relayState);
      assert.equal(ok.status, 303);
    } finally {
      await gw.services.tenants.save(tenant);
    }
  });

  it('samlify (an IdP the project did not write) encrypting the assertion: accepted', async () => {
    const { Constants } = samlify;
    // (samlify reads dataEncryptionAlgorithm and keyEncryptionAlgorithm at run time; its types omit them.)
    const settings = {
      entityID: idps.a.entityId,
      privateKey: idps.a.privateKey,
      signingCert: idps.a.certificate,
      isAssertionEncrypted: true,
      // samlify names AES-128-GCM and the CBC modes; its encryptor (@authenio/xml-encryption) also does AES-256-GCM.
      dataEncryptionAlgorithm: ALG.aes256gcm,
      keyEncryptionAlgorithm: Constants.algorithms.encryption.key.RSA_OAEP_MGF1P,
      nameIDFormat: [Constants.namespace.format.unspecified],
      singleSignOnService: [{ Binding: Constants.namespace.binding.redirect, Location: idps.a.ssoUrl }],
    };
    const idp = samlify.IdentityProvider(settings);
    // Our SP as the IdP administrator enters it from the SP metadata, encryption certificate included
    // (of a gateway with one key: samlify reads a single encryption certificate from metadata).
    const metadata = await single.http.get('/saml/metadata/a.example');
    const sp = samlify.ServiceProvider({ metadata: metadata.text, wantAssertionsSigned: true, isAssertionEncrypted: true });
    assert.equal(sp.entityMeta.getEntityID(), SP_ENTITY_ID);
    const login = await beginLogin(single, 'a.example');
    const out = await idp.createLoginResponse(sp, { extract: { request: { id: login.requestId } } }, 'post', { email: 'emp-001' });
    const xml = Buffer.from(out.context, 'base64').toString('utf8');
    assert.match(xml, /EncryptedAssertion/);
    assert.match(xml, /xmlenc11#aes256-gcm/);
    assert.match(xml, new RegExp(`Destination="${acsUrlOf('a.example')}"`));
    const res = await postAcs(single, 'a.example', out.context, login.relayState);
    assert.equal(res.status, 303, `${res.text.slice(0, 200)} ${String(await lastAuditReason(single, 'a.example'))}`);
    assert.ok(sessionCookieOf(res));
  });

  it('the decryption keys never reach the logs', () => {
    const text = gw.logText();
    for (const key of [spEncryptionKeys.current.privateKey, spEncryptionKeys.next.privateKey]) {
      const body = key.split('\n')[1]!;
      assert.ok(!text.includes(body), 'no line of a private key in the logs');
    }
    assert.doesNotMatch(text, /PRIVATE KEY/);
  });
});
