/**
 * Spans of our own code, through the OpenTelemetry API only (cheap; no SDK here). Tracing is off unless
 * the process was started with the preload (src/observability/tracing-preload.ts) and the OTEL_*
 * variables ask for an exporter: then the preload starts the SDK and marks tracing active. While it is
 * off, every helper here runs its function directly — no span, no context switch, no allocation.
 *
 * A login is one trace across the browser's round trip through the IdP: /d/login stores its
 * `traceparent` in the login transaction (`currentTraceParent`), and the ACS or the OAuth callback
 * continues that trace (`continueTrace`), linked to its own request's span.
 *
 * Never put a secret (SAMLResponse, code, token, cookie, password, MDM code) in a span attribute or
 * event: attributes here are names, codes and domains. Errors are recorded by their code only.
 */
import { context, propagation, ROOT_CONTEXT, SpanStatusCode, trace, type Attributes, type Span } from '@opentelemetry/api';
import { AppError } from '../errors/index.js';

const ACTIVE = Symbol.for('idp-bridge.tracing.active');
const TRACER_NAME = 'idp-bridge';

/** True when the preload started the SDK in this process. */
export function tracingActive(): boolean {
  return (globalThis as Record<symbol, unknown>)[ACTIVE] === true;
}

/** Called by the preload once the SDK runs (a global, so every copy of this module agrees). */
export function markTracingActive(): void {
  (globalThis as Record<symbol, unknown>)[ACTIVE] = true;
}

function endWithError(span: Span, err: unknown): void {
  // The error's code, never its message (a message may quote input).
  const code = err instanceof AppError ? err.code : err instanceof Error ? err.name : 'error';
  span.setAttribute('error.type', code);
  span.setStatus({ code: SpanStatusCode.ERROR, message: code });
}

function runInSpan<T>(span: Span, fn: () => T | Promise<T>): Promise<T> {
  return (async () => {
    try {
      return await fn();
    } catch (err) {
      endWithError(span, err);
      throw err;
    } finally {
      span.end();
    }
  })();
}

/** Runs `fn` in a child span `name` of the active span (just `fn` while tracing is off). */
export function withSpan<T>(name: string, fn: () => T | Promise<T>, attributes?: Attributes): T | Promise<T> {
  if (!tracingActive()) return fn();
  return trace.getTracer(TRACER_NAME).startActiveSpan(name, { attributes }, (span) => runInSpan(span, fn));
}

/** The W3C `traceparent` of the active span, to be carried across the browser's round trip (undefined while off). */
export function currentTraceParent(): string | undefined {
  if (!tracingActive()) return undefined;
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier.traceparent;
}

/**
 * Runs `fn` in a span `name` whose parent is `traceParent` (the login's start, from its transaction),
 * linked to the active span (this request's own): the login is then one trace. Without a stored
 * parent the span is a child of the active span. Just `fn` while tracing is off.
 */
export function continueTrace<T>(name: string, traceParent: string | undefined, fn: () => T | Promise<T>, attributes?: Attributes): T | Promise<T> {
  if (!tracingActive()) return fn();
  const tracer = trace.getTracer(TRACER_NAME);
  const here = trace.getActiveSpan()?.spanContext();
  const parent = traceParent ? propagation.extract(ROOT_CONTEXT, { traceparent: traceParent }) : undefined;
  if (!parent || !trace.getSpanContext(parent)) return tracer.startActiveSpan(name, { attributes }, (span) => runInSpan(span, fn));
  return tracer.startActiveSpan(name, { attributes, links: here ? [{ context: here }] : [] }, parent, (span) => runInSpan(span, fn));
}
