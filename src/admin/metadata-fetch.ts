import { Agent, request } from 'undici';
import { AppError } from '../errors/index.js';
import { findRefusal, type OutboundPolicy } from '../sso/oauth/outbound-policy.js';

const MAX_BYTES = 1_000_000;
const TIMEOUT_MS = 5_000;

function refuse(detail: string, reason: string, log?: string): AppError {
  return new AppError('metadata_fetch_failed', { detail: log ?? detail, reason, message: `The metadata URL could not be fetched: ${detail}.` });
}

/** The outbound policy refused the host: one answer whatever the cause (private address, metadata endpoint, no DNS answer). */
const refusedByPolicy = (log: string): AppError =>
  refuse(
    "its host is not a public address or does not resolve (private, loopback, link-local and cloud metadata addresses are refused unless the gateway's operator allows the host)",
    'outbound_refused',
    log,
  );

/** Node's codes for a certificate the server presented that cannot be trusted (self-signed, expired, wrong name …). */
const TLS_CERT_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** The first `code` along an error's cause chain (undici wraps socket and TLS errors). */
function codeOf(err: unknown): string | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string') return e.code;
  }
  return undefined;
}

/**
 * A failed fetch as a refusal. For a public server the message says what went wrong (time, TLS, the
 * connection) — anyone can find that out anyway. For a server only the operator's settings admit (an
 * on-premises IdP on a private address) it says only that the server could not be reached, so that a
 * tenant administrator cannot tell a closed port from a slow host or a TLS failure inside the
 * operator's network; the log has the cause.
 */
export function classifyMetadataFailure(err: unknown, timedOut: boolean, internal: boolean): AppError {
  const refusal = findRefusal(err);
  if (refusal) return refusedByPolicy(`${refusal.refusal}: ${refusal.message}`);
  const code = codeOf(err);
  const timeout = timedOut || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT';
  const tls = !timeout && code !== undefined && (TLS_CERT_CODES.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_'));
  const log = `${timeout ? 'timeout' : tls ? 'tls' : 'connection'}: ${code ?? (err instanceof Error ? err.message : 'error')}`;
  if (internal) return refuse('the server could not be reached or did not answer in time', 'unreachable', log);
  if (timeout) return refuse(`the server did not send the document within ${TIMEOUT_MS / 1000} seconds`, 'timeout', log);
  if (tls) return refuse(`the server's TLS certificate could not be verified (${code})`, 'tls', log);
  if (code === 'ECONNREFUSED') return refuse('the server refused the connection', 'connection', log);
  return refuse(`the connection failed${code ? ` (${code})` : ''}`, 'connection', log);
}

/**
 * Fetches IdP metadata from an admin-given URL (S-12) behind the outbound policy (outbound-policy.ts):
 * https only (outside tests), no credentials in the URL, the host's addresses checked before connecting
 * and again on the address each connection dials (DNS rebinding cannot slip in), no redirects, 5 s for
 * the whole exchange, 1 MB. Every failure is 400 `metadata_fetch_failed` with a message saying which —
 * a refused address, the server unreachable (a timeout, an untrusted TLS certificate, a refused
 * connection: named only for public servers), an HTTP status, a document too large.
 */
export async function fetchMetadata(rawUrl: string, options: { policy: OutboundPolicy; allowHttp: boolean }): Promise<string> {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw refuse('not a URL', 'url');
  }
  if (url.protocol !== 'https:' && !(options.allowHttp && url.protocol === 'http:')) throw refuse('only https URLs are accepted', 'scheme');
  if (url.username || url.password) throw refuse('URLs with credentials are not accepted', 'credentials');
  // One deadline for the whole exchange: resolving, connecting, the headers and every byte of the body
  // (a server dripping its answer never holds the request longer).
  const deadline = AbortSignal.timeout(TIMEOUT_MS);
  /** Whether a server only the operator's settings admit is involved: then failures stay coarse. */
  let internal = false;
  try {
    internal = (await options.policy.checkUrl(url, deadline)).some((a) => !a.public);
  } catch (err) {
    throw classifyMetadataFailure(err, deadline.aborted, true);
  }
  const agent = new Agent({
    connect: options.policy.connector({
      timeoutMs: TIMEOUT_MS,
      onDial: (address) => {
        if (!address.public) internal = true;
      },
    }),
    headersTimeout: TIMEOUT_MS,
    bodyTimeout: TIMEOUT_MS,
  });
  try {
    const res = await request(url, { method: 'GET', dispatcher: agent, headers: { accept: 'application/samlmetadata+xml, application/xml, text/xml' }, signal: deadline });
    // Hanging up on a body we will not read (its 'error' event on destroy is expected, not a crash).
    const discard = (): void => {
      res.body.on('error', () => undefined);
      res.body.destroy();
    };
    if (res.statusCode !== 200) {
      discard();
      throw refuse(`the server answered HTTP ${res.statusCode}`, 'http_status');
    }
    if (Number(res.headers['content-length'] ?? 0) > MAX_BYTES) {
      discard();
      throw refuse('the document is larger than 1 MB', 'too_large');
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > MAX_BYTES) {
        discard();
        throw refuse('the document is larger than 1 MB', 'too_large');
      }
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks).toString('utf8');
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw classifyMetadataFailure(err, deadline.aborted, internal);
  } finally {
    await agent.close().catch(() => undefined);
  }
}
