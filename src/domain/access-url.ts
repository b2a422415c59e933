import { AppError } from '../errors/index.js';

export interface AccessUrlPolicy {
  /** Origins allowed as targets: the global allowlist plus the tenant's serviceOrigins. */
  allowedOrigins: readonly string[];
  /** `http:` is allowed only when the gateway itself runs on http (PUBLIC_URL). */
  allowHttp: boolean;
  /** Used when accessUrl is missing; a path target is resolved against its origin. None: both are refused. */
  defaultServiceUrl: string | undefined;
  /** URL prefixes of the gateway itself that may be targets (the OP's interaction pages). */
  internalPrefixes?: readonly string[];
  /**
   * Pages of the gateway itself that may be targets, each exactly (`origin + path`, any query): the
   * console's sign-in completion. A longer path, a trailing slash or another encoding of the path is refused.
   */
  internalPages?: readonly string[];
}

/**
 * Longest accessUrl / logout redirect, before and after normalisation: `new URL().href`
 * percent-encodes, so 2,048 characters of CJK text become about 18,000 (9 per character), and the
 * login transaction stores the normalised form.
 */
const MAX_LENGTH = 2048;
// Control characters, whitespace and backslashes: browsers strip or reinterpret them (`/\t/evil`,
// `/\evil`), so a target holding any of them is refused rather than "cleaned".
const FORBIDDEN = /[\u0000-\u0020\u007f-\u009f\u00a0\u1680\u2000-\u200f\u2028-\u202f\u205f\u3000\ufeff\\]/;

function refuse(detail: string): AppError {
  return new AppError('invalid_access_url', { detail });
}

/** The normalised target, unless it grew past MAX_LENGTH. */
function bounded(href: string): string {
  if (href.length > MAX_LENGTH) throw refuse(`accessUrl too long once normalised (${href.length} characters)`);
  return href;
}

/**
 * S-5: returns the exact URL to send the browser to after login, or throws `invalid_access_url`.
 * Accepts an absolute https (or http when allowed) URL on an allowed origin with no userinfo and no
 * fragment, or a path starting with exactly one `/` (resolved on the default service's origin).
 */
export function checkAccessUrl(raw: unknown, policy: AccessUrlPolicy): string {
  if (raw === undefined || raw === '') {
    if (policy.defaultServiceUrl === undefined) throw refuse('no accessUrl, and no default service URL is configured');
    return policy.defaultServiceUrl;
  }
  if (typeof raw !== 'string') throw refuse('accessUrl is not a single string');
  if (raw.length > MAX_LENGTH) throw refuse('accessUrl too long');
  if (FORBIDDEN.test(raw)) throw refuse('accessUrl holds control characters, whitespace or a backslash');
  if (raw.includes('#')) throw refuse('accessUrl holds a fragment');

  if (raw.startsWith('/')) {
    if (raw.startsWith('//')) throw refuse('accessUrl is protocol-relative');
    if (policy.defaultServiceUrl === undefined) throw refuse('a path accessUrl, and no default service URL to resolve it on');
    const base = new URL(policy.defaultServiceUrl);
    const url = new URL(raw, base.origin);
    if (url.origin !== base.origin) throw refuse('path accessUrl left the default origin');
    return bounded(url.href);
  }

  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(raw)?.[1]?.toLowerCase();
  if (scheme !== 'https' && !(scheme === 'http' && policy.allowHttp)) throw refuse('accessUrl scheme not allowed');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw refuse('accessUrl is not a URL');
  }
  if (url.username || url.password) throw refuse('accessUrl holds userinfo');
  if (policy.internalPrefixes?.some((p) => url.href.startsWith(p))) return bounded(url.href);
  if (policy.internalPages?.includes(`${url.origin}${url.pathname}`)) return bounded(url.href);
  if (!policy.allowedOrigins.includes(url.origin)) throw refuse(`accessUrl origin not allowed: ${url.origin}`);
  return bounded(url.href);
}

/**
 * S-19 / S-20: a logout redirect may go only to a host in the tenant's logoutRedirectDomains (exact
 * host, or any subdomain when written `*.host`). Returns the URL, or null when it is not allowed.
 */
export function checkLogoutRedirect(raw: unknown, allowedHosts: readonly string[], allowHttp: boolean): string | null {
  if (typeof raw !== 'string' || raw === '' || raw.length > MAX_LENGTH) return null;
  if (FORBIDDEN.test(raw)) return null;
  // As for accessUrl (S-5): no fragment.
  if (raw.includes('#')) return null;
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(raw)?.[1]?.toLowerCase();
  if (scheme !== 'https' && !(scheme === 'http' && allowHttp)) return null;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  if (url.username || url.password) return null;
  // "Exact host": the scheme's default port only; the list names hosts, not ports.
  if (url.port !== '') return null;
  const host = url.hostname;
  const ok = allowedHosts.some((pattern) =>
    pattern.startsWith('*.') ? host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1 : host === pattern,
  );
  return ok && url.href.length <= MAX_LENGTH ? url.href : null;
}
