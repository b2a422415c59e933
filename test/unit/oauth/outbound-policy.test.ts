import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { classifyMetadataFailure } from '../../../src/admin/metadata-fetch.js';
import { ConfigError, loadConfig } from '../../../src/config/index.js';
import { OutboundPolicy, OutboundRefusal, classifyAddress, findRefusal, parseAllowedHost, type HostResolver } from '../../../src/sso/oauth/outbound-policy.js';

const policy = (allowedHosts: string[] = [], allowPrivateNetworks = false, resolve?: HostResolver): OutboundPolicy => new OutboundPolicy({ allowPrivateNetworks, allowedHosts }, resolve);

/** A resolver answering from a table (a missing name fails like NXDOMAIN). */
const table =
  (answers: Record<string, string[]>): HostResolver =>
  (host) => {
    const list = answers[host];
    if (!list) return Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' }));
    return Promise.resolve(list.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })));
  };

async function refusal(promise: Promise<unknown>): Promise<OutboundRefusal> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof OutboundRefusal) return err;
    throw err;
  }
  assert.fail('expected a refusal');
}

describe('outbound policy: address classes', () => {
  it('refuses loopback, private, link-local, CGNAT, unspecified, multicast, broadcast, reserved and documentation ranges', () => {
    const notPublic = [
      '127.0.0.1', '127.255.255.254', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.1.1', '100.64.0.1', '100.127.255.255',
      '0.0.0.0', '0.1.2.3', '224.0.0.1', '239.255.255.250', '255.255.255.255', '240.0.0.1', '192.0.2.10', '198.18.0.1', '198.51.100.7', '203.0.113.9', '192.0.0.8', '192.88.99.1',
      '::', '::1', 'fe80::1', 'febf::1', 'fc00::1', 'fd12:3456::1', 'ff02::1', 'fec0::1', '2001:db8::1', '100::1', '3fff::1', '2001::1', '64:ff9b:1::1',
      'fe80::1%eth0',
    ];
    for (const a of notPublic) assert.equal(classifyAddress(a), 'not_public', a);
  });

  it('looks inside IPv4-mapped, IPv4-compatible, SIIT, NAT64 and 6to4 addresses', () => {
    for (const a of ['::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.0.0.1', '::127.0.0.1', '::ffff:0:a00:1', '64:ff9b::7f00:1', '64:ff9b::10.0.0.1', '2002:7f00:1::', '2002:c0a8:101::1', '2002:a9fe:a9fe::1']) {
      assert.notEqual(classifyAddress(a), 'public', a);
    }
    for (const a of ['::ffff:8.8.8.8', '64:ff9b::808:808', '2002:808:808::1']) assert.equal(classifyAddress(a), 'public', a);
  });

  it('knows cloud metadata endpoints, in every form', () => {
    for (const a of ['169.254.169.254', '169.254.170.2', '100.100.100.200', 'fd00:ec2::254', '::ffff:169.254.169.254', '::ffff:a9fe:a9fe', '64:ff9b::a9fe:a9fe', '2002:a9fe:a9fe::']) {
      assert.equal(classifyAddress(a), 'cloud_metadata', a);
    }
  });

  it('admits public unicast', () => {
    for (const a of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '169.253.255.255', '223.255.255.255', '2606:4700:4700::1111', '2a00:1450:4001:80b::200e']) {
      assert.equal(classifyAddress(a), 'public', a);
    }
    assert.equal(classifyAddress('idp.example'), null);
  });
});

describe('outbound policy: the operator allowlist', () => {
  it('parses host, host:port, IPv4, [IPv6]:port and CIDR entries, and says what is wrong with others', () => {
    assert.deepEqual(parseAllowedHost('IdP.Corp.Example.'), { kind: 'name', name: 'idp.corp.example', port: undefined });
    assert.deepEqual(parseAllowedHost('idp.corp.example:8443'), { kind: 'name', name: 'idp.corp.example', port: 8443 });
    for (const ok of ['10.0.0.5', '10.0.0.5:8443', 'fd00::5', '[fd00::5]', '[fd00::5]:8443', '10.20.0.0/16', 'fd00:1::/48', '169.254.169.254', '127.0.0.1/32']) {
      assert.equal(typeof parseAllowedHost(ok), 'object', ok);
    }
    for (const bad of ['', 'idp.example:0', 'idp.example:70000', 'idp.example:http', '10.0.0.0/33', 'fd00::/129', 'not a host', '[10.0.0.1]:80', 'a:b:c', 'http://idp.example']) {
      assert.equal(typeof parseAllowedHost(bad), 'string', bad);
    }
  });

  it('refuses by default, and admits what the operator lists: a host name (and port), an address, a CIDR', async () => {
    const resolve = table({ 'idp.corp.example': ['10.1.2.3'], 'other.corp.example': ['10.1.2.4'], 'idp.example': ['93.184.215.14'] });
    const none = policy([], false, resolve);
    assert.deepEqual(await none.admittedAddresses('idp.example', 443), [{ address: '93.184.215.14', public: true }]);
    assert.equal((await refusal(none.admittedAddresses('idp.corp.example', 443))).refusal, 'not_public');
    assert.equal((await refusal(none.admittedAddresses('127.0.0.1', 80))).refusal, 'not_public');

    const byName = policy(['idp.corp.example:8443'], false, resolve);
    assert.deepEqual(await byName.admittedAddresses('IDP.corp.example.', 8443), [{ address: '10.1.2.3', public: false }]);
    await refusal(byName.admittedAddresses('idp.corp.example', 443));
    await refusal(byName.admittedAddresses('other.corp.example', 8443));
    await refusal(byName.admittedAddresses('10.1.2.3', 8443));

    const byAddress = policy(['10.1.2.3', '[fd00::7]:8443'], false, resolve);
    assert.equal((await byAddress.admittedAddresses('idp.corp.example', 1234))[0]!.address, '10.1.2.3');
    assert.equal((await byAddress.admittedAddresses('[fd00::7]', 8443))[0]!.address, 'fd00::7');
    await refusal(byAddress.admittedAddresses('[fd00::7]', 443));
    await refusal(byAddress.admittedAddresses('other.corp.example', 443));

    const byCidr = policy(['10.1.2.2/31'], false, resolve);
    await byCidr.admittedAddresses('idp.corp.example', 443);
    await refusal(byCidr.admittedAddresses('other.corp.example', 443));

    const open = policy([], true, resolve);
    await open.admittedAddresses('other.corp.example', 443);
    await open.admittedAddresses('::1', 443);
  });

  it('admits a cloud metadata endpoint only through an entry naming that exact address', async () => {
    const resolve = table({ 'metadata.google.internal': ['169.254.169.254'], 'sneaky.example': ['169.254.169.254'] });
    for (const p of [policy([], true, resolve), policy(['169.254.0.0/16', 'sneaky.example'], true, resolve)]) {
      assert.equal((await refusal(p.admittedAddresses('169.254.169.254', 80))).refusal, 'cloud_metadata');
      assert.equal((await refusal(p.admittedAddresses('[::ffff:169.254.169.254]', 80))).refusal, 'cloud_metadata');
      assert.equal((await refusal(p.admittedAddresses('sneaky.example', 80))).refusal, 'cloud_metadata');
      assert.equal((await refusal(p.admittedAddresses('metadata.google.internal', 80))).refusal, 'cloud_metadata');
    }
    const exact = policy(['169.254.169.254:80', 'metadata.google.internal'], false, resolve);
    await exact.admittedAddresses('169.254.169.254', 80);
    await exact.admittedAddresses('metadata.google.internal', 80);
    await refusal(exact.admittedAddresses('169.254.169.254', 8080));
  });

  it('refuses a name with any non-admitted address, and a name that does not resolve', async () => {
    const resolve = table({ mixed: ['93.184.215.14', '127.0.0.1'], empty: [] });
    const p = policy([], false, resolve);
    assert.equal((await refusal(p.admittedAddresses('mixed', 443))).refusal, 'not_public');
    assert.equal((await refusal(p.admittedAddresses('empty', 443))).refusal, 'dns_failed');
    assert.equal((await refusal(p.admittedAddresses('nowhere.invalid', 443))).refusal, 'dns_failed');
  });

  it('reads outbound from the config, refuses bad entries naming the key, and allows the demo its own origin', () => {
    const { config } = loadConfig({ env: { NODE_ENV: 'test', OUTBOUND_ALLOWED_HOSTS: 'idp.corp.example:8443, 10.0.0.0/8' }, overrides: { demo: { enabled: false } } });
    assert.deepEqual(config.outbound, { allowPrivateNetworks: false, allowedHosts: ['idp.corp.example:8443', '10.0.0.0/8'] });
    const safe = loadConfig({ env: { NODE_ENV: 'test' }, overrides: { demo: { enabled: false } } }).config;
    assert.deepEqual(safe.outbound, { allowPrivateNetworks: false, allowedHosts: [] }, 'the default refuses');
    assert.throws(
      () => loadConfig({ env: { NODE_ENV: 'test' }, overrides: { outbound: { allowedHosts: ['10.0.0.0/40'] } } }),
      (err: unknown) => err instanceof ConfigError && /outbound\.allowedHosts\.0/.test(err.message),
    );
    assert.throws(
      () => loadConfig({ env: { NODE_ENV: 'test' }, overrides: { admin: { allowPrivateMetadataUrls: true } } }),
      (err: unknown) => err instanceof ConfigError && /outbound\.allowedHosts/.test(err.message),
    );
    const demo = loadConfig({ env: { PORT: '3100' } });
    assert.deepEqual(demo.config.outbound.allowedHosts, ['localhost:3100'], 'npm start: the demo OAuth IdP is the gateway itself');
    const open = loadConfig({ env: { NODE_ENV: 'test', OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' } });
    assert.ok(open.warnings.some((w) => w.includes('outbound.allowPrivateNetworks')));
  });
});

describe('outbound policy: at connect time (DNS rebinding)', () => {
  let server: Server;
  let port: number;
  let connections = 0;

  before(async () => {
    server = createServer((_req, res) => res.end('ok'));
    server.on('connection', () => connections++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => server.close());

  it('refuses the connection when the name resolves to a refused address at connect time, though the check passed', async () => {
    let calls = 0;
    // The first answer (the check) is public; every later one (the connection) is loopback.
    const rebinding: HostResolver = () => Promise.resolve([{ address: calls++ === 0 ? '93.184.215.14' : '127.0.0.1', family: 4 }]);
    const p = policy([], false, rebinding);
    const url = new URL(`http://rebind.example:${port}/`);
    assert.deepEqual(await p.checkUrl(url), [{ address: '93.184.215.14', public: true }], 'the check before the call passes');
    const agent = new Agent({ connect: p.connector({ timeoutMs: 1000 }) });
    try {
      const err = await request(url, { dispatcher: agent }).then(
        () => null,
        (e: unknown) => e,
      );
      assert.equal(findRefusal(err)?.refusal, 'not_public', String(err));
      assert.equal(calls, 2);
      assert.equal(connections, 0, 'no connection reached the loopback server');
    } finally {
      await agent.close();
    }
  });

  it('dials the admitted address itself, trying the next one when the first refuses the connection', async () => {
    // ::1 first (nothing listens there on this port), then 127.0.0.1.
    const p = policy(['dual.test'], false, table({ 'dual.test': ['::1', '127.0.0.1'] }));
    const dialled: string[] = [];
    const agent = new Agent({ connect: p.connector({ timeoutMs: 1000, onDial: (a) => dialled.push(a.address) }) });
    try {
      const res = await request(`http://dual.test:${port}/`, { dispatcher: agent });
      assert.equal(await res.body.text(), 'ok');
      assert.deepEqual(dialled.at(-1), '127.0.0.1');
    } finally {
      await agent.close();
    }
  });
});

describe('metadata fetch failures as the admin reads them', () => {
  const failures = [
    Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
    Object.assign(new Error('self-signed'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }),
    Object.assign(new Error('headers timeout'), { code: 'UND_ERR_HEADERS_TIMEOUT' }),
  ];

  it('names the cause for a public server', () => {
    const messages = failures.map((e) => classifyMetadataFailure(e, false, false).publicMessage);
    assert.match(messages[0]!, /refused the connection/);
    assert.match(messages[1]!, /TLS certificate could not be verified/);
    assert.match(messages[2]!, /within 5 seconds/);
  });

  it('says only "could not be reached" for a server the operator admits on a private address; the log keeps the cause', () => {
    const errors = failures.map((e) => classifyMetadataFailure(e, false, true));
    assert.equal(new Set(errors.map((e) => e.publicMessage)).size, 1, 'one message for a closed port, a TLS failure and a timeout');
    assert.match(errors[0]!.publicMessage, /could not be reached/);
    assert.deepEqual(
      errors.map((e) => e.detail),
      ['connection: ECONNREFUSED', 'tls: DEPTH_ZERO_SELF_SIGNED_CERT', 'timeout: UND_ERR_HEADERS_TIMEOUT'],
    );
  });
});
