/**
 * What keeps secrets out of the traces. The instrumentations record URLs (a query string may carry an
 * OAuth code, a state, a SAMLRequest, a token) and Redis commands (whose values and some keys are
 * secrets or their stand-ins): every span is scrubbed as it ends, before any exporter sees it.
 */
import type { AttributeValue } from '@opentelemetry/api';
import type { Span, SpanProcessor } from '@opentelemetry/sdk-trace-base';

const REDACTED = 'REDACTED';

/** A URL or path with every query value (and any fragment) replaced; parameter names stay. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  const hash = url.indexOf('#');
  const end = hash === -1 ? url.length : hash;
  if (q === -1 || q > end) return url.slice(0, end);
  const names = url
    .slice(q + 1, end)
    .split('&')
    .filter(Boolean)
    .map((pair) => {
      const name = pair.split('=')[0]!;
      return `${/^[A-Za-z0-9_.-]{1,64}$/.test(name) ? name : REDACTED}=${REDACTED}`;
    });
  return `${url.slice(0, q)}?${names.join('&')}`;
}

/** A bare query string (url.query) with its values replaced. */
function redactQuery(query: string): string {
  return redactUrl(`?${query}`).slice(1);
}

const FIXED_SEGMENT = /^(\{[^{}:]{1,253}\}|[a-z][a-z-]{0,23})$/;

/**
 * A Redis key's shape: the deployment's key prefix (any segment of it that is not a plain word as `*`),
 * then from `idpb` on its fixed segments (the `{domain}` hash tag, lowercase words) up to the first
 * one that may be an id, a digest, a code or a token, which becomes `*` and ends the shape.
 */
export function redisKeyShape(key: string): string {
  const segments = key.split(':');
  const start = segments.indexOf('idpb');
  if (start === -1) return '*';
  const out = segments.slice(0, start).map((s) => (FIXED_SEGMENT.test(s) ? s : '*'));
  for (const segment of segments.slice(start)) {
    if (FIXED_SEGMENT.test(segment)) {
      out.push(segment);
      continue;
    }
    out.push('*');
    break;
  }
  return out.join(':');
}

/** ioredis instrumentation's `db.statement`: the command and its first key's shape, never a value. */
export function redisStatement(command: string, args: Array<string | Buffer | number | unknown[]>): string {
  const name = command.toUpperCase();
  if (/^(EVAL|EVALSHA|EVAL_RO|EVALSHA_RO|FCALL|SCRIPT|AUTH|HELLO|CLIENT|CLUSTER|INFO|PING|SELECT|MULTI|EXEC)$/.test(name)) return name;
  const first = args[0];
  return typeof first === 'string' ? `${name} ${redisKeyShape(first)}` : name;
}

/** Attribute keys whose string values are URLs, paths or query strings. */
const URL_KEYS = /(^|\.)(url|full|target|path|query)$/;

function scrub(key: string, value: AttributeValue | undefined): AttributeValue | undefined {
  if (typeof value !== 'string') return value;
  if (key === 'url.query') return redactQuery(value);
  if (URL_KEYS.test(key) || key === 'http.url' || key === 'url.full') return redactUrl(value);
  return value;
}

/** Scrubs every URL-like attribute of a span and of its events before the span is exported. */
export class RedactingSpanProcessor implements SpanProcessor {
  onStart(): void {}

  onEnding(span: Span): void {
    for (const [key, value] of Object.entries(span.attributes)) {
      const clean = scrub(key, value);
      if (clean !== value && clean !== undefined) span.setAttribute(key, clean);
    }
    for (const event of span.events) {
      if (!event.attributes) continue;
      for (const [key, value] of Object.entries(event.attributes)) {
        const clean = scrub(key, value);
        if (clean !== value && clean !== undefined) (event.attributes as Record<string, AttributeValue>)[key] = clean;
      }
    }
  }

  onEnd(): void {}

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}
