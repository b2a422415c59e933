import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { OPERATOR_AUTH } from '../../helpers/gateway.js';
import { idps } from '../../helpers/keys.js';
import { pollUntil, request, startGatewayProcess, type GatewayProcess } from './helpers.js';

/**
 * SIGTERM drains: the gateway process (src/main.ts) stops taking new connections, lets a request that
 * is in flight finish — here an admin import of IdP metadata whose IdP holds its answer until the test
 * lets it go, after the signal — and only then exits 0. (demo.test.ts checks the exit code of an idle
 * process.)
 */

const CERT = idps.b.certificate.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, '');
const METADATA = `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.drain.test/entity"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>${CERT}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.drain.test/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>`;

describe('SIGTERM: an in-flight request completes before the process exits', () => {
  let gateway: GatewayProcess;
  let dir: string;
  let idp: Server;
  let idpUrl: string;
  /** The IdP's answer, held until the test sends it. */
  let held: ServerResponse | null = null;

  before(async () => {
    idp = createServer((req, res) => {
      req.resume();
      held = res;
    });
    await new Promise<void>((r) => idp.listen(0, '127.0.0.1', r));
    idpUrl = `http://127.0.0.1:${(idp.address() as { port: number }).port}/metadata`;

    dir = mkdtempSync(join(tmpdir(), 'idpb-drain-'));
    const configFile = join(dir, 'config.json');
    writeFileSync(configFile, JSON.stringify({ outbound: { allowedHosts: ['127.0.0.1'] } }));
    gateway = await startGatewayProcess({ IDPB_CONFIG: configFile, WORKERS: '1' });
  });

  after(() => {
    const { child } = gateway;
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    idp.closeAllConnections();
    idp.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('finishes the request held open across the signal, refuses new connections meanwhile, then exits 0', { timeout: 60_000 }, async () => {
    const { child, base, output } = gateway;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const events: string[] = [];
    void exited.then(() => events.push('exit'));

    const inFlight = request(`${base}/admin/v1/domains/demo.example/saml/idp-metadata`, {
      method: 'POST',
      headers: { authorization: OPERATOR_AUTH, 'content-type': 'application/json' },
      body: JSON.stringify({ url: idpUrl }),
      deadlineMs: 30_000,
    }).then((outcome) => {
      events.push('answer');
      return outcome;
    });
    assert.ok(await pollUntil(() => held !== null, 200, 50), 'the gateway is waiting for the IdP');

    child.kill('SIGTERM');
    assert.ok(await pollUntil(() => output().includes('draining in-flight requests'), 200, 50), output());
    const refused = await request(`${base}/healthz`, { deadlineMs: 5_000 });
    assert.equal(refused.kind, 'network_error', 'no new connection is taken while draining');
    assert.deepEqual(events, [], 'still running: the request in flight holds the exit');

    held!.writeHead(200, { 'content-type': 'application/samlmetadata+xml' }).end(METADATA);
    const outcome = await inFlight;
    assert.ok(outcome.kind === 'answer', JSON.stringify(outcome));
    assert.equal(outcome.status, 200, outcome.text);
    assert.equal((JSON.parse(outcome.text) as { entityId: string }).entityId, 'https://idp.drain.test/entity');

    assert.equal(await exited, 0, output().slice(-2000));
    assert.deepEqual(events, ['answer', 'exit'], 'the answer went out before the process exited');
    assert.match(output(), /"msg":"stopped"/);
    assert.doesNotMatch(output(), /drain timed out/);
  });
});
