import assert from 'node:assert/strict';
import { X509Certificate, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { SsoSwitch, type Effects } from '../../../src/admin/sso-switch.js';
import type { NewMember } from '../../../src/domain/members.js';
import { digestForKey, keys, RedisStore, type KeyValueStore } from '../../../src/store/index.js';
import { OPERATOR_AUTH as OPERATOR, PUBLIC_URL, SP_ENTITY_ID, createGateway, type Gateway } from '../../helpers/gateway.js';
import { idps } from '../../helpers/keys.js';
import { memberSnapshot } from '../../helpers/members.js';
import { oidcTenant } from '../../helpers/oauth-tenants.js';
import { redisUrl } from '../../helpers/redis.js';

/**
 * GET / PUT / PATCH …/sso as the console uses them (docs/spec.md §11): a GET that PUTs back unchanged,
 * partial PATCHes, IdP metadata in PUT, certificate and SP details, the switch preview (counts equal to
 * what the real switch then does; nothing changed by the preview), the super-admin rule for switching,
 * progress and resuming an interrupted switch, and the SP certificate download.
 */

const HOUR = 3600_000;
/** A JSON view as the API answers it (the tests read nested fields freely). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type View = Record<string, any>;
const DAY = 24 * HOUR;
const FAKE_HASH = 'scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
const certBody = (pem: string): string => pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, '');
const METADATA = `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.meta.test/entity"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>${certBody(idps.b.certificate)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.meta.test/slo"/><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.meta.test/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>`;

function api(gw: Gateway, auth = OPERATOR) {
  const p = (path: string): string => `/admin/v1${path}`;
  return {
    get: (path: string) => gw.http.get(p(path)).set('Authorization', auth),
    post: (path: string, body: object = {}) => gw.http.post(p(path)).set('Authorization', auth).send(body),
    put: (path: string, body: object) => gw.http.put(p(path)).set('Authorization', auth).send(body),
    patch: (path: string, body: object) => gw.http.patch(p(path)).set('Authorization', auth).send(body),
  };
}

const samlOn = { enabled: true, type: 'saml', userKey: 'externalKey', webLoginUrl: idps.a.ssoUrl, saml: { idpEntityId: idps.a.entityId, idpCertificates: [idps.a.certificate] } };

/** The switch's bookkeeping keys left for a tenant (none once a switch is complete). */
async function switchKeysLeft(store: KeyValueStore, domain: string): Promise<string[]> {
  const left: string[] = [];
  for (const key of [keys.ssoSwitchJob(domain), keys.ssoSwitchLock(domain), keys.ssoSwitchCounts(domain), keys.ssoSwitchDone(domain)]) {
    if ((await store.pttl(key)) !== -2) left.push(key);
  }
  return left;
}

/**
 * n members of every status (one super admin), with passwords, app passwords, web sessions, invitations
 * and, for some, OpenID Provider sessions, grants and tokens: every effect of both switches has something to count.
 */
async function seedTenant(gw: Gateway, domain: string, n: number): Promise<void> {
  const created = await api(gw).post('/domains', { domain, name: `Co ${domain}`, plan: 'standard' });
  assert.equal(created.status, 201, created.text);
  const members: Array<NewMember & { sessions: number }> = Array.from({ length: n }, (_, i) => {
    const r = i % 20;
    const status = r < 14 ? 'in_use' : r < 17 ? 'pending' : r < 19 ? 'unapproved' : 'suspended';
    return {
      id: `m-${i}`,
      account: `user${i}@${domain}`,
      name: `User ${i}`,
      ...(i % 4 === 3 ? {} : { externalKey: `emp-${i}` }),
      role: i === 0 ? 'super_admin' : 'member',
      status,
      ...(i % 3 === 0 ? { passwordHash: FAKE_HASH } : {}),
      appPasswords: i % 7 === 0 ? [{ id: `app_${i}`, name: 'mail', hash: FAKE_HASH, createdAt: 1_700_000_000_000 }] : [],
      createdAt: 1_700_000_000_000,
      sessions: status === 'in_use' ? i % 3 : 0,
    };
  });
  for (let i = 0; i < members.length; i += 200) {
    await Promise.all(
      members.slice(i, i + 200).map(async ({ sessions, ...m }) => {
        await gw.services.members.save(domain, m);
        for (let s = 0; s < sessions; s++) await gw.services.sessions.create({ memberId: m.id!, domain, account: m.account, authMethod: 'saml', clientKind: 'web' }, 8 * HOUR);
        const i2 = Number(m.id!.slice(2));
        if (m.status === 'pending' && i2 % 2 === 0) {
          const token = randomBytes(32).toString('base64url');
          await gw.store.hSet(keys.invitations(domain), { [`inv_${m.id}`]: JSON.stringify({ id: `inv_${m.id}`, memberId: m.id, createdAt: gw.clock.now(), expiresAt: gw.clock.now() + 7 * DAY, tokenDigest: digestForKey(token) }) });
        }
        if (m.status === 'in_use' && i2 % 10 === 1) {
          // An OP grant with an access and a refresh token, and an OP session.
          const grant = `g-${domain}-${m.id}`;
          const rows = [keys.opModel('AccessToken', `at-${grant}`), keys.opModel('RefreshToken', `rt-${grant}`)];
          for (const row of rows) await gw.store.set(row, '{}', { ttlMs: HOUR });
          await gw.store.set(keys.opModel('Grant', grant), '{}', { ttlMs: HOUR });
          await gw.store.sAdd(keys.opGrantRows(grant), ...rows);
          await gw.store.sAdd(keys.opMemberGrants(domain, m.id!), grant);
          await gw.store.sAdd(keys.opTenantGrants(domain), grant);
          await gw.store.set(keys.opModel('Session', `s-${grant}`), '{}', { ttlMs: HOUR });
          await gw.store.sAdd(keys.opMemberSessions(domain, m.id!), `s-${grant}`);
        }
      }),
    );
  }
}

describe('SSO settings as the console reads and writes them', () => {
  let gw: Gateway;
  let a: ReturnType<typeof api>;

  before(async () => {
    gw = await createGateway();
    a = api(gw);
  });
  after(async () => gw.close());

  it('GET answers the settings plus certificates, SP details and switchInProgress, and PUT takes it back unchanged', async () => {
    const first = await a.get('/domains/a.example/sso');
    assert.equal(first.status, 200, first.text);
    const sso = first.body as View;
    assert.equal(sso.enabled, true);
    assert.equal(sso.saml.idpEntityId, idps.a.entityId);
    assert.ok(!('idpMetadataXml' in sso.saml));
    assert.equal(sso.switchInProgress, null);
    assert.deepEqual(sso.sp, {
      entityId: SP_ENTITY_ID,
      acsUrl: `${PUBLIC_URL}/acs/a.example`,
      sloUrl: `${PUBLIC_URL}/saml2/sp/slo`,
      metadataUrl: `${PUBLIC_URL}/saml/metadata/a.example`,
      certificateUrl: `${PUBLIC_URL}/admin/v1/domains/a.example/saml/sp-certificate.pem`,
      directLoginUrl: `${PUBLIC_URL}/d/login/a.example`,
      oauthRedirectUri: `${PUBLIC_URL}/oauth/callback/a.example`,
    });
    // The SP metadata says the same.
    const metadata = await gw.http.get('/saml/metadata/a.example');
    assert.ok(metadata.text.includes(`entityID="${sso.sp.entityId}"`) && metadata.text.includes(`Location="${sso.sp.acsUrl}"`));

    const put = await a.put('/domains/a.example/sso', sso);
    assert.equal(put.status, 200, put.text);
    assert.equal(put.body.switched, false);
    assert.deepEqual(put.body.sso, sso, 'PUT answers the same view');
    assert.deepEqual((await a.get('/domains/a.example/sso')).body, sso, 'nothing changed');
  });

  it('round-trips an OIDC tenant: the secret never leaves, and PUT without it keeps it', async () => {
    await gw.services.tenants.save({ ...oidcTenant('rt-oidc.example', 'https://idp.oidc.test'), sso: { ...oidcTenant('rt-oidc.example', 'https://idp.oidc.test').sso!, enabled: false } });
    const got = await a.get('/domains/rt-oidc.example/sso');
    assert.equal(got.body.oauth.clientSecretSet, true);
    assert.ok(!('clientSecret' in got.body.oauth) && !got.text.includes('bridge-oidc-secret'));
    const before = (await gw.services.tenants.load('rt-oidc.example')).sso.oauth!.clientSecret;
    const put = await a.put('/domains/rt-oidc.example/sso', got.body);
    assert.equal(put.status, 200, put.text);
    assert.equal((await gw.services.tenants.load('rt-oidc.example')).sso.oauth!.clientSecret, before);
    const patched = await a.patch('/domains/rt-oidc.example/sso', { oauth: { scopes: ['openid', 'email'] } });
    assert.equal(patched.status, 200, patched.text);
    assert.deepEqual(patched.body.sso.oauth.scopes, ['openid', 'email']);
    assert.equal(patched.body.sso.oauth.clientId, got.body.oauth.clientId);
    assert.equal((await gw.services.tenants.load('rt-oidc.example')).sso.oauth!.clientSecret, before);
  });

  it('PATCH changes one flag and keeps everything else; null clears an optional URL', async () => {
    const before = (await a.get('/domains/a.example/sso')).body as View;
    const res = await a.patch('/domains/a.example/sso', { saml: { allowSha1: true } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.switched, false);
    assert.deepEqual(res.body.sso, { ...before, saml: { ...before.saml, allowSha1: true } });
    const flag = await a.patch('/domains/a.example/sso', { setExpireTime: true, saml: { idpSloUrl: 'https://idp-a.test/slo' } });
    assert.equal(flag.status, 200, flag.text);
    assert.deepEqual(flag.body.sso, { ...before, setExpireTime: true, saml: { ...before.saml, allowSha1: true, idpSloUrl: 'https://idp-a.test/slo' } });
    const cleared = await a.patch('/domains/a.example/sso', { setExpireTime: false, saml: { allowSha1: false, idpSloUrl: null } });
    assert.deepEqual(cleared.body.sso, before);
    // A PATCH that would leave the enabled configuration incomplete is refused, naming the field.
    const broken = await a.patch('/domains/a.example/sso', { webLoginUrl: null });
    assert.equal(broken.status, 400, broken.text);
    assert.deepEqual((broken.body.details as Array<{ path: string }>).map((d) => d.path), ['webLoginUrl']);
    assert.deepEqual((await a.get('/domains/a.example/sso')).body, before);
  });

  it('PUT applies saml.idpMetadataXml (entity ID, SSO and SLO URLs, certificates)', async () => {
    const res = await a.put('/domains/nosso.example/sso', { enabled: false, type: 'saml', saml: { idpMetadataXml: METADATA } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.sso.webLoginUrl, 'https://idp.meta.test/sso');
    assert.equal(res.body.sso.saml.idpEntityId, 'https://idp.meta.test/entity');
    assert.equal(res.body.sso.saml.idpSloUrl, 'https://idp.meta.test/slo');
    assert.equal(res.body.sso.certificates.length, 1);
    assert.equal(res.body.sso.certificates[0].subject, new X509Certificate(idps.b.certificate).subject.split('\n').join(', '));
    const stored = await gw.services.tenants.load('nosso.example');
    assert.equal(stored.sso.saml?.idpMetadataXml, METADATA);
    assert.equal(stored.sso.enabled, false);
    const bad = await a.put('/domains/nosso.example/sso', { enabled: false, saml: { idpMetadataXml: '<md:EntityDescriptor' } });
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.body.error, 'idp_metadata_invalid');
    assert.equal(bad.body.details[0].path, 'saml.idpMetadataXml');
    // PATCH with metadata too, merged over what is stored.
    const patched = await a.patch('/domains/nosso.example/sso', { saml: { allowSha1: true, idpMetadataXml: METADATA.replace('https://idp.meta.test/sso', 'https://idp.meta.test/sso2') } });
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.body.sso.webLoginUrl, 'https://idp.meta.test/sso2');
    assert.equal(patched.body.sso.saml.allowSha1, true);
  });

  it('describes the certificates and flags expiring and expired ones by the injected clock', async () => {
    const cert = new X509Certificate(idps.a.certificate);
    const notAfter = Date.parse(cert.validTo);
    const at = async (now: number) => {
      gw.clock.set(now);
      return ((await a.get('/domains/a.example/sso')).body.certificates as Array<Record<string, unknown>>)[0]!;
    };
    const valid = await at(notAfter - 365 * DAY);
    assert.deepEqual(valid, {
      index: 0,
      subject: 'CN=test idp-a',
      issuer: cert.issuer.split('\n').join(', '),
      fingerprintSha256: cert.fingerprint256,
      notBefore: new Date(cert.validFrom).toISOString(),
      notAfter: new Date(notAfter).toISOString(),
      expired: false,
      expiresSoon: false,
    });
    assert.match(valid.fingerprintSha256, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    assert.deepEqual([(await at(notAfter - 10 * DAY)).expiresSoon, (await at(notAfter - 10 * DAY)).expired], [true, false]);
    const expired = await at(notAfter + 1000);
    assert.deepEqual([expired.expiresSoon, expired.expired], [false, true]);
    const warned = await a.patch('/domains/a.example/sso', {});
    assert.match((warned.body.warnings as string[]).join(' '), /expired/);
    gw.clock.set(Date.now());
  });

  it('serves the SP certificate as a PEM download, or 404 when the gateway has none', async () => {
    const res = await a.get('/domains/a.example/saml/sp-certificate.pem');
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^application\/x-pem-file/);
    assert.match(String(res.headers['content-disposition']), /^attachment; filename="?a\.example-sp-certificate\.pem"?$/);
    const text = Buffer.isBuffer(res.body) ? res.body.toString('utf8') : res.text;
    assert.equal(new X509Certificate(text).fingerprint256, new X509Certificate(gw.services.sp.signing!.certificate).fingerprint256);
    const signing = gw.services.sp.signing;
    gw.services.sp.signing = undefined;
    try {
      const none = await a.get('/domains/a.example/saml/sp-certificate.pem');
      assert.equal(none.status, 404);
      assert.equal(none.body.error, 'not_found');
      const sp = (await a.get('/domains/a.example/sso')).body.sp;
      assert.equal(sp.certificateUrl, null);
      assert.equal(sp.sloUrl, null);
    } finally {
      gw.services.sp.signing = signing;
    }
  });
});

describe('switch preview, permission, progress and resume', () => {
  const D = 'preview.example';
  const N = 1200;
  let gw: Gateway;
  let a: ReturnType<typeof api>;

  before(async () => {
    gw = await createGateway();
    a = api(gw);
    await seedTenant(gw, D, N);
  });
  after(async () => gw.close());

  it('lists the problems of an incomplete configuration', async () => {
    const res = await a.post(`/domains/${D}/sso/preview`, { enabled: true });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.switching, true);
    assert.deepEqual((res.body.problems as Array<{ path: string }>).map((p) => p.path).sort(), ['saml.idpCertificates', 'saml.idpEntityId', 'webLoginUrl']);
    const der = await a.post(`/domains/${D}/sso/preview`, { ...samlOn, saml: { idpEntityId: idps.a.entityId, idpCertificates: ['not a certificate'] } });
    assert.equal(der.status, 200, der.text);
    assert.equal(der.body.problems[0].path, 'saml.idpCertificates');
  });

  it('counts the effects of switching on without changing anything, and the switch then does exactly that', { timeout: 120_000 }, async () => {
    const snapshot = await memberSnapshot(gw, D);
    const sessions = await gw.countKeys('idpb:session:*');
    const invitations = await gw.store.hLen(keys.invitations(D));
    const preview = await a.post(`/domains/${D}/sso/preview`, samlOn);
    assert.equal(preview.status, 200, preview.text);
    assert.equal(preview.body.switching, true);
    assert.equal(preview.body.target, true);
    assert.deepEqual(preview.body.problems, []);
    const effects = preview.body.effects as Effects;
    assert.ok(effects.pendingActivated > 0 && effects.unapprovedDeleted > 0 && effects.appPasswordsDeleted > 0 && effects.sessionsEnded > 0 && effects.invitationsInvalidated > 0 && effects.tokensRevoked > 0, JSON.stringify(effects));
    assert.equal(effects.passwordsDeleted, 0);
    // Nothing moved.
    assert.equal(await memberSnapshot(gw, D), snapshot);
    assert.equal(await gw.countKeys('idpb:session:*'), sessions);
    assert.equal(await gw.store.hLen(keys.invitations(D)), invitations);
    assert.equal((await gw.services.tenants.load(D)).sso.enabled, false);
    assert.deepEqual(await switchKeysLeft(gw.store, D), []);

    const res = await a.patch(`/domains/${D}/sso`, samlOn);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.switched, true);
    assert.deepEqual(res.body.effects, effects, 'the preview counted what the switch did');

    const idle = await a.post(`/domains/${D}/sso/preview`, { saml: { allowSha1: true } });
    assert.equal(idle.body.switching, false);
    assert.deepEqual(Object.values(idle.body.effects), [0, 0, 0, 0, 0, 0, 0]);
  });

  it('refuses an admin without the super admin role the switch, but lets them edit other fields', async () => {
    // TODO(console sessions): drive this through a real console session once that code is on the branch.
    const realResolve = gw.services.adminKeys.resolve.bind(gw.services.adminKeys);
    gw.services.adminKeys.resolve = async (presented) =>
      presented === 'member-admin-token' ? { kind: 'member', domain: D, memberId: 'm-1', role: 'admin', sessionId: 'x' } : realResolve(presented);
    try {
      const admin = api(gw, 'Bearer member-admin-token');
      const flip = await admin.patch(`/domains/${D}/sso`, { enabled: false });
      assert.equal(flip.status, 403, flip.text);
      assert.equal(flip.body.error, 'forbidden');
      assert.equal((await gw.services.tenants.load(D)).sso.enabled, true);
      const put = await admin.put(`/domains/${D}/sso`, { ...samlOn, enabled: false });
      assert.equal(put.status, 403, put.text);
      const resume = await admin.post(`/domains/${D}/sso/switch/resume`);
      assert.equal(resume.status, 403, resume.text);
      const edit = await admin.patch(`/domains/${D}/sso`, { setExpireTime: true });
      assert.equal(edit.status, 200, edit.text);
      assert.equal(edit.body.sso.setExpireTime, true);
    } finally {
      gw.services.adminKeys.resolve = realResolve;
    }
  });

  it('counts the effects of switching off the same way', { timeout: 120_000 }, async () => {
    for (let i = 1; i < 40; i += 3) await gw.services.sessions.create({ memberId: `m-${i}`, domain: D, account: `user${i}@${D}`, authMethod: 'saml', clientKind: 'web' }, HOUR);
    const preview = await a.post(`/domains/${D}/sso/preview`, { enabled: false });
    assert.equal(preview.body.switching, true);
    assert.ok(preview.body.effects.passwordsDeleted > 0 && preview.body.effects.sessionsEnded > 0, JSON.stringify(preview.body.effects));
    assert.match((preview.body.warnings as string[]).join(' '), /deletes every password/);
    const res = await a.patch(`/domains/${D}/sso`, { enabled: false });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body.effects, preview.body.effects);
  });

  it('shows progress while a switch runs, an interrupted switch as resumable, and resumes it', { timeout: 120_000 }, async () => {
    const preview = (await a.post(`/domains/${D}/sso/preview`, samlOn)).body.effects as Effects;
    // The first switch on deleted the unapproved members.
    const total = await gw.store.sCard(keys.memberIds(D));
    assert.ok(total < N);
    const url = await redisUrl();
    const prefix = (gw.store as RedisStore).client.options.keyPrefix!;
    const doomed = new RedisStore({ url, keyPrefix: prefix, commandTimeoutMs: 2000 });
    await doomed.connect();
    const crashing = await createGateway({ store: doomed, clock: gw.clock });
    const seen: Array<Record<string, unknown>> = [];
    crashing.services.ssoSwitch = new SsoSwitch({
      store: doomed,
      tenants: crashing.services.tenants,
      clock: gw.clock,
      sessionEnders: [crashing.services.sessions, crashing.services.opRevocation],
      tokenRevokers: [crashing.services.opRevocation],
      batchSize: 300,
      afterBatch: async () => {
        // What the console polls while the switch runs, from another gateway.
        seen.push((await a.get(`/domains/${D}/sso`)).body.switchInProgress as Record<string, unknown>);
        if (seen.length === 2) doomed.client.disconnect();
      },
    });
    try {
      const res = await api(crashing).patch(`/domains/${D}/sso`, samlOn);
      assert.equal(res.status, 503, res.text);
    } finally {
      await doomed.close().catch(() => undefined);
    }
    assert.equal(seen[0]!.running, true);
    assert.equal(seen[0]!.target, true);
    assert.equal(seen[0]!.membersTotal, total);
    assert.ok((seen[0]!.membersDone as number) > 0 && (seen[1]!.membersDone as number) > (seen[0]!.membersDone as number), JSON.stringify(seen));

    // The dead run could not release its lock (its connection was cut), but its holder has ended in this
    // process: the switch shows as interrupted at once, not "running" until the lease runs out.
    assert.ok((await gw.store.pttl(keys.ssoSwitchLock(D))) > 0, 'the dead run left its lock');
    const pending = (await a.get(`/domains/${D}/sso`)).body.switchInProgress;
    assert.equal(pending.running, false);
    assert.equal(pending.membersTotal, total);
    assert.ok(pending.membersDone > 0 && pending.membersDone < total);
    // The preview of the pending switch still counts the whole switch.
    assert.deepEqual((await a.post(`/domains/${D}/sso/preview`, {})).body.effects, preview);

    const resumed = await a.post(`/domains/${D}/sso/switch/resume`);
    assert.equal(resumed.status, 200, resumed.text);
    assert.equal(resumed.body.switched, true);
    assert.deepEqual(resumed.body.effects, preview, 'the resumed switch ends with the counts the preview announced');
    assert.equal(resumed.body.sso.switchInProgress, null);
    assert.deepEqual(await switchKeysLeft(gw.store, D), []);
    const [audit] = await gw.services.audit.list(D, 1);
    assert.equal(audit?.type, 'sso.enabled');
    assert.equal(audit?.data?.resumed, true);

    const none = await a.post(`/domains/${D}/sso/switch/resume`);
    assert.equal(none.status, 409, none.text);
    assert.equal(none.body.error, 'conflict');
    await crashing.close();
  });
});
