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

function refuse(detail: string, message?: string): AppError {
  return new AppError('metadata_fetch_failed', { detail, message: message ?? `The metadata URL could not be fetched: ${detail}.` });
}

/**
 * Fetches IdP metadata from an admin-given URL (S-12) with an SSRF guard: https only (outside tests),
 * the host's addresses resolved and checked before connecting — and the connection made to the checked
 * address, so DNS rebinding cannot slip in — no redirects, 5 s, 1 MB.
 */
export async function fetchMetadata(rawUrl: string, options: { allowPrivate: boolean; allowHttp: boolean }): Promise<string> {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw refuse('not a URL');
  }
  if (url.protocol !== 'https:' && !(options.allowHttp && url.protocol === 'http:')) throw refuse('only https URLs are accepted');
  if (url.username || url.password) throw refuse('URLs with credentials are not accepted');
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let addresses: string[];
  try {
    addresses = isIP(host) ? [host] : (await lookup(host, { all: true })).map((a) => a.address);
  } catch {
    throw refuse('the host name does not resolve');
  }
  if (addresses.length === 0) throw refuse('the host name does not resolve');
  if (!options.allowPrivate && addresses.some(isPrivateAddress)) throw refuse('private, loopback and link-local addresses are not allowed');
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
  try {
    const res = await request(url, { method: 'GET', dispatcher: agent, headers: { accept: 'application/samlmetadata+xml, application/xml, text/xml' }, signal: AbortSignal.timeout(TIMEOUT_MS) });
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw refuse(`the server answered HTTP ${res.statusCode}`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > MAX_BYTES) {
        res.body.destroy();
        throw refuse('the document is larger than 1 MB');
      }
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks).toString('utf8');
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw refuse('the server did not answer in time or the connection failed');
  } finally {
    await agent.close().catch(() => undefined);
  }
}
