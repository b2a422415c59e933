import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { Agent, request } from 'undici';
import { AppError } from '../errors/index.js';

const MAX_BYTES = 1_000_000;
const TIMEOUT_MS = 5_000;

/** Loopback, private, link-local, CGNAT, multicast, unspecified and other non-public ranges (v4 and v6). */
export function isPrivateAddress(address: string): boolean {
  if (isIP(address) === 4) {
    const [a, b] = address.split('.').map(Number) as [number, number];
    return (
      a === 0 ||
      a === 10 ||
      a === 127 ||
      (a === 100 && b >= 64 && b <= 127) ||
      (a === 169 && b === 254) ||
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168) ||
      (a === 192 && b === 0) ||
      (a === 198 && (b === 18 || b === 19)) ||
      a >= 224
    );
  }
  const v6 = address.toLowerCase();
  if (v6.startsWith('::ffff:')) return isPrivateAddress(v6.slice(7));
  return v6 === '::' || v6 === '::1' || /^f[cd]/.test(v6) || /^fe[89ab]/.test(v6) || v6.startsWith('ff');
}

function refuse(detail: string, reason = 'refused'): AppError {
  return new AppError('metadata_fetch_failed', { detail, reason, message: `The metadata URL could not be fetched: ${detail}.` });
}

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

/** A failed fetch as a refusal that says what went wrong: time, TLS, or the connection. */
function classify(err: unknown, timedOut: boolean): AppError {
  const code = codeOf(err);
  if (timedOut || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    return refuse(`the server did not send the document within ${TIMEOUT_MS / 1000} seconds`, 'timeout');
  }
  if (code && (TLS_CERT_CODES.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_'))) {
    return refuse(`the server's TLS certificate could not be verified (${code})`, 'tls');
  }
  if (code === 'ECONNREFUSED') return refuse('the server refused the connection', 'connection');
  return refuse(`the connection failed${code ? ` (${code})` : ''}`, 'connection');
}

/**
 * Fetches IdP metadata from an admin-given URL (S-12) with an SSRF guard: https only (outside tests),
 * the host's addresses resolved and checked before connecting — and the connection made to the checked
 * address, so DNS rebinding cannot slip in — no redirects, 5 s for the whole exchange, 1 MB. Every
 * failure is 400 `metadata_fetch_failed` with a message saying which (a timeout, an untrusted TLS
 * certificate, a refused connection, an HTTP status, a document too large) and the same as `reason`.
 */
export async function fetchMetadata(rawUrl: string, options: { allowPrivate: boolean; allowHttp: boolean }): Promise<string> {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw refuse('not a URL');
  }
  if (url.protocol !== 'https:' && !(options.allowHttp && url.protocol === 'http:')) throw refuse('only https URLs are accepted', 'scheme');
  if (url.username || url.password) throw refuse('URLs with credentials are not accepted', 'credentials');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let addresses: string[];
  try {
    addresses = isIP(host) ? [host] : (await lookup(host, { all: true })).map((a) => a.address);
  } catch {
    throw refuse('the host name does not resolve', 'dns');
  }
  if (addresses.length === 0) throw refuse('the host name does not resolve', 'dns');
  if (!options.allowPrivate && addresses.some(isPrivateAddress)) throw refuse('private, loopback and link-local addresses are not allowed', 'private_address');
  const pinned = addresses[0]!;
  const agent = new Agent({
    connect: {
      timeout: TIMEOUT_MS,
      // Connect to the address we checked, whatever DNS says by now.
      lookup: (_hostname, opts, cb) => {
        const family = isIP(pinned);
        if ((opts as { all?: boolean }).all) (cb as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [{ address: pinned, family }]);
        else cb(null, pinned, family);
      },
    },
    headersTimeout: TIMEOUT_MS,
    bodyTimeout: TIMEOUT_MS,
  });
  // One deadline for the whole exchange: connecting, the headers and every byte of the body (a server
  // dripping its answer never holds the request longer).
  const deadline = AbortSignal.timeout(TIMEOUT_MS);
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
    throw classify(err, deadline.aborted);
  } finally {
    await agent.close().catch(() => undefined);
  }
}
