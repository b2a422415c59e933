/**
 * Traces (issue 18): the gateway as a process (WORKERS=2 on Redis, started with the tracing preload as
 * the image starts it) exports over OTLP/HTTP JSON to a local receiver. A full SAML login through the
 * demo IdP is one trace: /d/login's server span, the `saml.acs` span that continues it (linked to the
 * ACS request's own span), the verification steps, the second gate and the Redis calls as children.
 * No secret of the login (SAMLResponse, the session and binding cookies, the password, the query
 * strings' values, the transaction id) appears anywhere in what was exported. Without OTEL_* variables
 * the same start exports nothing.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { attributeOf, startOtlpReceiver, type OtlpReceiver, type OtlpSpan } from '../../helpers/otlp-receiver.js';
import { createTestRedisStore, freePort, redisUrl } from '../../helpers/redis.js';
import { call } from '../../helpers/one-connection.js';

const field = (html: string, name: string): string => {
  const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  if (!m) throw new Error(`no ${name} in page`);
  return m[1]!.replace(/&#(\d+);/g, (_, c: string) => String.fromCharCode(Number(c)));
};

const cookieValue = (setCookie: string[], name: string): string => {
  const c = setCookie.find((s) => s.startsWith(`${name}=`) && !s.startsWith(`${name}=;`));
  assert.ok(c, `a ${name} cookie`);
  return c.split(';')[0]!;
};

interface Gateway {
  base: string;
  output(): string;
  stop(): Promise<void>;
}

async function startGateway(env: NodeJS.ProcessEnv): Promise<Gateway> {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', '--import', './src/observability/tracing-preload.ts', 'src/main.ts'], {
    env: { ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000).unref())]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  };
  for (const end = Date.now() + 120_000; Date.now() < end; ) {
    if ((output.match(/"msg":"idp-bridge listening"/g) ?? []).length >= Number(env.WORKERS ?? 1)) return { base: `http://localhost:${port}`, output: () => output, stop };
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  assert.fail(`the gateway did not start:\n${output.slice(-3000)}`);
}

/** What a login handed around that must never be exported. */
interface Secrets {
  samlResponse: string;
  relayState: string;
  sessionCookie: string;
  bindingCookie: string;
  samlRequest: string;
}

/** A full SAML login through the demo IdP (the browser's part played here). */
async function samlLogin(base: string, marker: string): Promise<Secrets> {
  const start = await call(base, 'GET', `/d/login/demo.example?accessUrl=${encodeURIComponent(`${base}/welcome?${marker}=1`)}`);
  assert.equal(start.status, 302, start.text);
  const binding = cookieValue(start.setCookie, 'idpb_login');
  const idp = new URL(start.location!);
  const form = await call(base, 'GET', idp.pathname + idp.search);
  assert.equal(form.status, 200);
  const samlRequest = field(form.text, 'SAMLRequest');
  const posted = await call(base, 'POST', '/demo-idp/saml/sso', {
    form: { SAMLRequest: samlRequest, RelayState: field(form.text, 'RelayState'), username: 'alice', password: 'alice-demo-password' },
  });
  assert.equal(posted.status, 200);
  const samlResponse = field(posted.text, 'SAMLResponse');
  const relayState = field(posted.text, 'RelayState');
  const acs = await call(base, 'POST', '/acs/demo.example', { form: { SAMLResponse: samlResponse, RelayState: relayState }, cookie: binding });
  assert.equal(acs.status, 303, acs.text);
  const session = cookieValue(acs.setCookie, 'idpb_session');
  assert.equal((await call(base, 'GET', '/session', { cookie: session })).status, 200);
  return { samlResponse, relayState, sessionCookie: session.slice(session.indexOf('=') + 1), bindingCookie: binding.slice(binding.indexOf('=') + 1), samlRequest };
}

async function waitFor(what: string, ok: () => boolean, ms = 20_000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (ok()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('traces over OTLP from a gateway process (issue 18)', () => {
  let receiver: OtlpReceiver;
  let cleanup: () => Promise<void>;
  let baseEnv: NodeJS.ProcessEnv;

  before(async () => {
    receiver = await startOtlpReceiver();
    const owned = await createTestRedisStore();
    cleanup = owned.cleanup;
    baseEnv = { ...process.env, WORKERS: '2', REDIS_URL: await redisUrl(), REDIS_KEY_PREFIX: owned.prefix, LOG_LEVEL: 'info' };
    for (const k of Object.keys(baseEnv)) if (k.startsWith('OTEL_')) delete baseEnv[k];
    delete baseEnv.METRICS_TOKEN;
    delete baseEnv.NODE_ENV;
    delete baseEnv.PUBLIC_URL;
    delete baseEnv.IDPB_CONFIG;
  });

  after(async () => {
    await receiver?.close();
    await cleanup?.();
  });

  it('a SAML login is one trace with the named spans, and no secret is exported', async () => {
    const gw = await startGateway({
      ...baseEnv,
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_SERVICE_NAME: 'idp-bridge-test',
      OTEL_BSP_SCHEDULE_DELAY: '100',
    });
    let secrets: Secrets;
    try {
      secrets = await samlLogin(gw.base, 'marker');
      await waitFor('the ACS spans', () => receiver.spans().some((s) => s.name === 'saml.acs.result') && receiver.spans().some((s) => s.name === 'saml.acs'));
      // The session check and the last Redis calls may still be on their way.
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      await gw.stop();
    }
    const spans = receiver.spans();
    const byName = (name: string): OtlpSpan[] => spans.filter((s) => s.name === name);
    const [start] = byName('GET /d/login/:domain');
    assert.ok(start, `a server span for /d/login (spans: ${[...new Set(spans.map((s) => s.name))].join(', ')})`);
    const [acs] = byName('saml.acs');
    assert.ok(acs, 'a saml.acs span');
    assert.equal(acs.traceId, start.traceId, 'the ACS continues the trace /d/login started: one trace per login');
    const acsRequest = byName('POST /acs/:domain')[0];
    assert.ok(acsRequest, 'the ACS request has its own server span');
    assert.notEqual(acsRequest.traceId, start.traceId, 'the browser round trip broke the trace: the ACS request starts its own');
    const linked = acs.links?.find((l) => l.traceId === acsRequest.traceId);
    assert.ok(linked, 'saml.acs links to the ACS request trace');
    assert.ok(spans.some((s) => s.spanId === linked.spanId && s.traceId === acsRequest.traceId), 'the link names an exported span of that request');
    const trace = spans.filter((s) => s.traceId === start.traceId);
    const inTrace = (name: string): OtlpSpan | undefined => trace.find((s) => s.name === name);
    for (const name of ['saml.acs.checkTenant', 'saml.acs.resolveTransaction', 'saml.acs.verifySignature', 'saml.acs.checkReplay', 'saml.acs.result', 'saml.second_gate']) {
      const span = inTrace(name);
      assert.ok(span, `${name} in the login's trace`);
    }
    assert.equal(inTrace('saml.acs.verifySignature')!.parentSpanId, acs.spanId, 'the verification steps are children of saml.acs');
    // Store calls: the transaction written at /d/login and the replay record at the ACS, as Redis spans of this trace.
    const redis = trace.filter((s) => attributeOf(s, 'db.system.name') === 'redis' || attributeOf(s, 'db.system') === 'redis');
    const statements = redis.map((s) => String(attributeOf(s, 'db.query.text') ?? attributeOf(s, 'db.statement')));
    assert.ok(statements.some((q) => /^SET \S*idpb:\{demo\.example\}:txn:\*$/.test(q)), `the transaction write, key shape only: ${statements.join(' | ')}`);
    assert.ok(statements.some((q) => /^GETDEL \S*idpb:\{demo\.example\}:txn:\*$/.test(q)), `the transaction consumed at the ACS: ${statements.join(' | ')}`);

    // No secret anywhere in what was exported (attributes, events, names, links).
    const exported = receiver.bodies().join('\n');
    const forms = (v: string): string[] => [v, encodeURIComponent(v), v.slice(0, 40), v.slice(-40)];
    for (const [what, value] of Object.entries({ ...secrets, password: 'alice-demo-password' })) {
      for (const form of forms(value)) assert.ok(!exported.includes(form), `${what} must not be exported`);
    }
    assert.ok(!exported.includes('marker'), 'query string values are redacted');
    assert.ok(exported.includes('accessUrl=REDACTED'), 'query parameter names stay, values are redacted');
  });

  it('without OTEL_* variables the preload loads no SDK and nothing is exported', async () => {
    const before = receiver.bodies().length;
    const gw = await startGateway({ ...baseEnv, OTEL_SERVICE_NAME: 'idp-bridge-test' });
    try {
      await samlLogin(gw.base, 'quiet');
      await new Promise((r) => setTimeout(r, 1_000));
    } finally {
      await gw.stop();
    }
    assert.equal(receiver.bodies().length, before, 'nothing exported');
  });
});
