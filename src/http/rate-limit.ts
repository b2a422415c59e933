import { isIP } from 'node:net';
import type { NextFunction, Request, Response } from 'express';
import type { Config } from '../config/schema.js';
import type { Clock } from '../domain/clock.js';
import { AppError } from '../errors/index.js';
import type { Metrics } from '../observability/metrics.js';
import { digestForKey, keys, type KeyValueStore } from '../store/index.js';

export interface RateLimitRule {
  /** Names the counter family (`session-check`, `password-login` …); the label of `idpb_rate_limited_total`. */
  bucket: string;
  limit: number;
  windowMs: number;
  /** What is counted: the client (clientSubject) by default. */
  subject?: (req: Request) => string;
}

/** Where the counters live and whose time decides the windows (the Services object has both, and the metrics). */
export interface RateLimitDeps {
  store: KeyValueStore;
  clock: Clock;
  /** When given, every refusal is counted in `idpb_rate_limited_total{bucket}`. */
  metrics?: Pick<Metrics, 'rateLimited'>;
}

/** An IPv6 client is counted by its /64: one host (or LAN) holds the whole prefix and can rotate through it. */
const IPV6_CLIENT_GROUPS = 4;

/** The eight 16-bit groups of a valid IPv6 address (a trailing dotted quad folded in), zone id dropped. */
function ipv6Groups(address: string): number[] {
  let text = address.split('%')[0]!;
  const quad = /^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (quad) {
    const [a, b, c, d] = quad.slice(2).map(Number) as [number, number, number, number];
    text = `${quad[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  return [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right];
}

/**
 * Who a per-client limit counts: the client IP as Express gives it (honouring `trust proxy`), an
 * IPv4-mapped IPv6 address as its IPv4 address, any other IPv6 address by its /64 prefix.
 */
export function clientSubject(req: Request): string {
  const ip = req.ip ?? '';
  if (isIP(ip) !== 6) return ip || 'unknown';
  const groups = ipv6Groups(ip);
  const mapped = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
  if (mapped) return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.');
  return `${groups.slice(0, IPV6_CLIENT_GROUPS).map((g) => g.toString(16)).join(':')}::/64`;
}

/**
 * Counts one request against the rule; throws 429 `rate_limited` (Retry-After: the seconds until the
 * window ends) when it is over. For handlers that limit only one branch of their work.
 */
export async function checkRateLimit(deps: RateLimitDeps, rule: RateLimitRule, req: Request, res: Response): Promise<void> {
  const subject = rule.subject ? rule.subject(req) : clientSubject(req);
  const now = deps.clock.now();
  const window = Math.floor(now / rule.windowMs);
  // The counter outlives its window by construction (the key names the window; the TTL only cleans up).
  const count = await deps.store.incr(keys.rateLimit(rule.bucket, digestForKey(`${window}:${subject}`)), rule.windowMs);
  if (count > rule.limit) {
    const endsInMs = (window + 1) * rule.windowMs - now;
    res.setHeader('Retry-After', String(Math.max(1, Math.ceil(endsInMs / 1000))));
    deps.metrics?.rateLimited.inc({ bucket: rule.bucket });
    throw new AppError('rate_limited', { detail: `${rule.bucket} limit ${rule.limit}/${rule.windowMs}ms` });
  }
}

/**
 * Fixed-window rate limiting in the shared store, so every gateway process counts together. Windows
 * are cut by the injected clock (tests move it; every process of a deployment reads the same time).
 * Over the limit: 429 `rate_limited` with Retry-After, the seconds until the window ends.
 */
export function rateLimit(deps: RateLimitDeps, rule: RateLimitRule) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    await checkRateLimit(deps, rule, req, res);
    next();
  };
}

/** The public routes anyone can call without a session, each family with its own per-client budget (config `rateLimits`). */
export type PublicRouteFamily = 'login-start' | 'acs' | 'oauth-callback' | 'saml-logout' | 'logout' | 'op-authorize';

const PUBLIC_ROUTE_LIMIT_KEYS: Record<PublicRouteFamily, keyof Config['rateLimits']> = {
  'login-start': 'loginStartPerMinute',
  acs: 'acsPerMinute',
  'oauth-callback': 'oauthCallbackPerMinute',
  'saml-logout': 'samlLogoutPerMinute',
  logout: 'logoutPerMinute',
  'op-authorize': 'opAuthorizePerMinute',
};

/** The rule of a public route family: its configured requests per minute per client; the bucket is the family's name. */
export function publicRouteRule(config: Pick<Config, 'rateLimits'>, family: PublicRouteFamily): RateLimitRule {
  return { bucket: family, limit: config.rateLimits[PUBLIC_ROUTE_LIMIT_KEYS[family]], windowMs: 60_000 };
}
