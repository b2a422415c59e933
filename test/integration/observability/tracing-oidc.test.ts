/**
 * Traces (issue 18): the outbound IdP calls carry W3C `traceparent`. The SDK is started in this process
 * (as the preload would, exporting OTLP/JSON to a local receiver); an OIDC login against a real
 * OpenID Provider (oidc-provider), whose requests are recorded as they arrive, sends `traceparent` on
 * the token call, naming the exported `oauth.callback` trace; neither the code nor the client secret
 * nor any token is exported.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LOOPBACK_IDPS, SERVICE_ORIGIN, createGateway, rememberLoginBinding, sessionCookieOf, withBinding, type Gateway } from '../../helpers/gateway.js';
import { oidcTenant } from '../../helpers/oauth-tenants.js';
import { BRIDGE_CLIENT_SECRET, callbackUrlOf, followAuthorization, startOidcIdp, type OidcIdp } from '../../helpers/oidc-idp.js';
import { startOtlpReceiver, type OtlpReceiver } from '../../helpers/otlp-receiver.js';
import { startTracing } from '../../../src/observability/tracing-sdk.js';
import { tracingActive } from '../../../src/observability/tracing.js';

const NET = { timeout: 30_000 };
const TRACEPARENT_RE = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[0-9a-f]$/;

describe('traceparent on the outbound IdP calls (issue 18)', () => {
  let receiver: OtlpReceiver;
  let gw: Gateway;
  let idp: OidcIdp;
  const seen: Array<{ method: string; path: string; headers: Record<string, unknown> }> = [];

  before(async () => {
    receiver = await startOtlpReceiver();
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_BSP_SCHEDULE_DELAY: '100', OTEL_SERVICE_NAME: 'idp-bridge-test' };
    Object.assign(process.env, env);
    await startTracing(env);
    assert.ok(tracingActive());
    gw = await createGateway({ overrides: LOOPBACK_IDPS });
    // The IdP's HTTP server records every request's headers as they arrive.
    idp = await startOidcIdp({ onRequest: (req) => seen.push({ method: req.method ?? '', path: (req.url ?? '').split('?')[0]!, headers: { ...req.headers } }) });
    await gw.services.tenants.save(oidcTenant('oidc.example', idp.issuer));
    await gw.services.members.save('oidc.example', { id: 'm-200', account: 'emp200@oidc.example', name: 'Employee 200', externalKey: 'emp-200', role: 'member', status: 'in_use' });
  });

  after(async () => {
    await gw?.services.outbound.close();
    await idp?.close();
    await gw?.close();
    await receiver?.close();
  });

  it('an OIDC login sends traceparent on the token call, in the oauth.callback trace; no code or secret exported', NET, async () => {
    const start = await gw.http.get('/d/login/oidc.example').query({ accessUrl: `${SERVICE_ORIGIN}/board` });
    assert.equal(start.status, 302, start.text);
    const location = new URL(start.headers.location as string);
    const state = location.searchParams.get('state')!;
    rememberLoginBinding(start, state);
    const cb = await followAuthorization(location);
    assert.equal(cb.origin + cb.pathname, callbackUrlOf('oidc.example'));
    const code = cb.searchParams.get('code')!;
    const res = await withBinding(gw.http.get(`/oauth/callback/oidc.example${cb.search}`), state);
    assert.equal(res.status, 303, res.text);
    const session = sessionCookieOf(res)!;
    assert.ok(session);

    const token = seen.find((r) => r.method === 'POST' && r.path === '/token');
    assert.ok(token, `the token call reached the IdP (${seen.map((r) => `${r.method} ${r.path}`).join(', ')})`);
    const traceparent = token.headers.traceparent;
    assert.equal(typeof traceparent, 'string', 'the token call carries traceparent');
    const [, traceId, parentSpanId] = TRACEPARENT_RE.exec(traceparent as string) ?? [];
    assert.ok(traceId, `a W3C traceparent: ${String(traceparent)}`);

    await waitFor(() => receiver.spans().some((s) => s.name === 'oauth.callback') && receiver.spans().some((s) => s.spanId === parentSpanId));
    const callback = receiver.spans().find((s) => s.name === 'oauth.callback')!;
    assert.equal(callback.traceId, traceId, 'the token call belongs to the login callback trace');
    const client = receiver.spans().find((s) => s.spanId === parentSpanId)!;
    assert.equal(client.traceId, traceId, 'traceparent names the outbound call span');

    const exported = receiver.bodies().join('\n');
    for (const [what, value] of Object.entries({ code, state, clientSecret: BRIDGE_CLIENT_SECRET, session: session.split(';')[0]!.split('=')[1]! })) {
      assert.ok(!exported.includes(value), `${what} must not be exported`);
    }
  });
});

async function waitFor(ok: () => boolean, ms = 10_000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (ok()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail('timed out waiting for the exported spans');
}
