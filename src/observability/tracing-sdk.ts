/**
 * The OpenTelemetry Node SDK, started by the preload only when traces are asked for (so its weight is
 * never loaded otherwise). Configured by the standard OTEL_* variables: OTEL_SERVICE_NAME,
 * OTEL_TRACES_EXPORTER (otlp, console), OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT / _PROTOCOL
 * (http/protobuf by default, http/json, grpc) / _HEADERS, OTEL_TRACES_SAMPLER[_ARG], OTEL_BSP_*.
 *
 * Instrumented: node:http (incoming and outgoing), express, ioredis, undici (the outbound IdP calls,
 * which then carry W3C `traceparent`). What would carry a secret is redacted before export (see
 * tracing-redact.ts): query strings, and Redis commands beyond their name and key shape.
 */
import { register } from 'node:module';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { tracesRequested } from './tracing-env.js';
import { markTracingActive } from './tracing.js';
import { RedactingSpanProcessor, redisStatement } from './tracing-redact.js';

async function otlpExporter(env: Record<string, string | undefined>): Promise<SpanExporter> {
  const protocol = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf').trim();
  if (protocol === 'http/json') return new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter();
  if (protocol === 'grpc') return new (await import('@opentelemetry/exporter-trace-otlp-grpc')).OTLPTraceExporter();
  return new (await import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter();
}

export async function startTracing(env: Record<string, string | undefined> = process.env): Promise<void> {
  if (!tracesRequested(env)) return;
  // ESM: node:http (and any ESM package) is hooked through import-in-the-middle's loader hook.
  register('@opentelemetry/instrumentation/hook.mjs', import.meta.url);
  const [{ NodeSDK, tracing }, { HttpInstrumentation }, { ExpressInstrumentation }, { IORedisInstrumentation }, { UndiciInstrumentation }] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/instrumentation-http'),
    import('@opentelemetry/instrumentation-express'),
    import('@opentelemetry/instrumentation-ioredis'),
    import('@opentelemetry/instrumentation-undici'),
  ]);
  const names = (env.OTEL_TRACES_EXPORTER ?? 'otlp').split(',').map((e) => e.trim().toLowerCase()).filter(Boolean);
  const exporters: SpanExporter[] = [];
  for (const name of names.length ? names : ['otlp']) {
    if (name === 'otlp') exporters.push(await otlpExporter(env));
    else if (name === 'console') exporters.push(new tracing.ConsoleSpanExporter());
    else process.stderr.write(`idp-bridge: OTEL_TRACES_EXPORTER "${name}" is not supported here (otlp, console); ignored\n`);
  }
  const sdk = new NodeSDK({
    // The redaction runs first, on every span as it ends, before any exporter sees it.
    spanProcessors: [new RedactingSpanProcessor(), ...exporters.map((e) => new tracing.BatchSpanProcessor(e))],
    instrumentations: [
      new HttpInstrumentation({
        // Probes and scrapes would drown the logins.
        ignoreIncomingRequestHook: (req) => /^\/(healthz|readyz|metrics)(\?|$)/.test(req.url ?? ''),
      }),
      new ExpressInstrumentation(),
      new IORedisInstrumentation({ dbStatementSerializer: redisStatement }),
      new UndiciInstrumentation(),
    ],
  });
  sdk.start();
  markTracingActive();
  const stop = (): void => {
    void sdk.shutdown().catch(() => undefined);
  };
  // Flush what is buffered when the process is asked to stop (the gateway drains, then exits).
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
