/**
 * saml.requireEncryptedAssertions through the admin API (docs/spec.md "Encrypted assertions"): on a
 * gateway without an SP decryption key (saml.decryption) every login would then be refused, so saving
 * it true is refused with validation_failed naming the field — by PUT, PATCH, the switch preview and a
 * domain configuration import —
 * and nothing is stored; with a key configured it is saved.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { spEncryptionKeys } from '../../helpers/encrypt-assertion.js';
import { OPERATOR_AUTH, createGateway, type Gateway } from '../../helpers/gateway.js';

const D = 'a.example';
const PATH = `/admin/v1/domains/${D}/sso`;

describe('admin API: requireEncryptedAssertions needs an SP decryption key', () => {
  let noKeys: Gateway;
  let withKeys: Gateway;
  before(async () => {
    noKeys = await createGateway();
    withKeys = await createGateway({ overrides: { saml: { decryption: { keyFile: spEncryptionKeys.current.keyFile, certFile: spEncryptionKeys.current.certFile } } } });
  });
  after(async () => {
    await noKeys.close();
    await withKeys.close();
  });

  it('without a key: PATCH and PUT setting it true are refused with 400 validation_failed on that field, and nothing is stored', async () => {
    const before = await noKeys.http.get(PATH).set('Authorization', OPERATOR_AUTH);
    assert.equal(before.status, 200);

    const patched = await noKeys.http.patch(PATH).set('Authorization', OPERATOR_AUTH).send({ saml: { requireEncryptedAssertions: true, allowSha1: true } });
    assert.equal(patched.status, 400, patched.text);
    assert.equal(patched.body.error, 'validation_failed');
    assert.deepEqual(
      (patched.body.details as Array<{ path: string; message: string }>).map((d) => d.path),
      ['saml.requireEncryptedAssertions'],
    );
    assert.match(patched.body.details[0].message, /saml\.decryption/);

    const { certificates: _c, sp: _s, switchInProgress: _w, idpMetadataRefresh: _r, ...settings } = before.body as Record<string, unknown>;
    const put = await noKeys.http.put(PATH).set('Authorization', OPERATOR_AUTH).send({ ...settings, saml: { ...(settings.saml as object), requireEncryptedAssertions: true } });
    assert.equal(put.status, 400, put.text);
    assert.equal(put.body.error, 'validation_failed');

    const preview = await noKeys.http.post(`${PATH}/preview`).set('Authorization', OPERATOR_AUTH).send({ saml: { requireEncryptedAssertions: true } });
    assert.equal(preview.status, 200, preview.text);
    assert.deepEqual((preview.body.problems as Array<{ path: string }>).map((p) => p.path), ['saml.requireEncryptedAssertions']);

    // The same through a domain configuration import (domain-config.ts), dry run or not.
    const exported = await noKeys.http.get(`/admin/v1/domains/${D}/config.json`).set('Authorization', OPERATOR_AUTH);
    assert.equal(exported.status, 200, exported.text);
    const doc = exported.body as { settings: { sso: { saml: Record<string, unknown> } } };
    doc.settings.sso.saml.requireEncryptedAssertions = true;
    for (const query of ['?dryRun=true', '']) {
      const imported = await noKeys.http.post(`/admin/v1/domains/${D}/config${query}`).set('Authorization', OPERATOR_AUTH).send(doc);
      assert.equal(imported.status, 400, imported.text);
      assert.equal(imported.body.error, 'validation_failed');
      assert.deepEqual((imported.body.details as Array<{ path: string }>).map((d) => d.path), ['settings.sso.saml.requireEncryptedAssertions']);
    }

    const stored = (await noKeys.services.tenants.load(D)).sso.saml!;
    assert.equal(stored.requireEncryptedAssertions, undefined);
    assert.equal(stored.allowSha1, (before.body.saml as { allowSha1: boolean }).allowSha1, 'nothing of the refused PATCH applied');

    const off = await noKeys.http.patch(PATH).set('Authorization', OPERATOR_AUTH).send({ saml: { requireEncryptedAssertions: false } });
    assert.equal(off.status, 200, off.text);
  });

  it('with a key configured, it is saved', async () => {
    const res = await withKeys.http.patch(PATH).set('Authorization', OPERATOR_AUTH).send({ saml: { requireEncryptedAssertions: true } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.sso.saml.requireEncryptedAssertions, true);
    assert.equal((await withKeys.services.tenants.load(D)).sso.saml!.requireEncryptedAssertions, true);
  });
});
