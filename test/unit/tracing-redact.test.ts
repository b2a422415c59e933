import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { redactUrl, redisKeyShape, redisStatement } from '../../src/observability/tracing-redact.js';
import { tracesRequested } from '../../src/observability/tracing-env.js';
import { continueTrace, currentTraceParent, tracingActive, withSpan } from '../../src/observability/tracing.js';
import { keys } from '../../src/store/keys.js';

describe('tracing: what keeps secrets out of spans', () => {
  it('redacts every query value, keeps the names, drops fragments', () => {
    assert.equal(redactUrl('/oauth/callback/a.example?code=SECRET&state=abc#frag'), '/oauth/callback/a.example?code=REDACTED&state=REDACTED');
    assert.equal(redactUrl('https://idp.example/sso?SAMLRequest=PHNhbWw%3D&RelayState=x'), 'https://idp.example/sso?SAMLRequest=REDACTED&RelayState=REDACTED');
    assert.equal(redactUrl('/d/login/a.example'), '/d/login/a.example');
    assert.equal(redactUrl('/x?<script>=1'), '/x?REDACTED=REDACTED');
  });

  it('gives Redis commands as name and key shape: no id, digest, code or token, never a value', () => {
    const id = 'Ab3_dEf-GhIjKlMnOpQrStUvWxYz0123';
    assert.equal(redisKeyShape(keys.loginTransaction('a.example', id)), 'idpb:{a.example}:txn:*');
    assert.equal(redisKeyShape(`prod-1x:${keys.webSession('f00d'.repeat(16))}`), '*:idpb:session:*');
    assert.equal(redisKeyShape(keys.opModel('AuthorizationCode', 'the-code-itself')), 'idpb:op:*');
    assert.equal(redisKeyShape(keys.opUserCode('BCDF-GHJK')), 'idpb:op:user-code:*');
    assert.equal(redisKeyShape('not-ours'), '*');
    assert.equal(redisStatement('set', [keys.loginTransaction('a.example', id), '{"secret":"value"}', 'PX', 600000]), 'SET idpb:{a.example}:txn:*');
    assert.equal(redisStatement('evalsha', ['0123abcd', 1, 'idpb:x']), 'EVALSHA');
    assert.equal(redisStatement('auth', ['password']), 'AUTH');
  });

  it('asks for traces only when an exporter or an endpoint is named, never when disabled', () => {
    assert.equal(tracesRequested({}), false);
    assert.equal(tracesRequested({ OTEL_SERVICE_NAME: 'x' }), false);
    assert.equal(tracesRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }), true);
    assert.equal(tracesRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces' }), true);
    assert.equal(tracesRequested({ OTEL_TRACES_EXPORTER: 'console' }), true);
    assert.equal(tracesRequested({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }), false);
    assert.equal(tracesRequested({ OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }), false);
  });

  it('while tracing is off, the helpers just run the function', async () => {
    assert.equal(tracingActive(), false);
    assert.equal(withSpan('x', () => 42), 42, 'synchronously, no promise');
    assert.equal(await continueTrace('y', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', () => Promise.resolve('ok')), 'ok');
    assert.equal(currentTraceParent(), undefined);
  });
});
