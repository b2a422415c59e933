import type { NextFunction, Request, Response } from 'express';
import type { Clock } from '../domain/clock.js';
import { AppError } from '../errors/index.js';
import { digestForKey, keys, type KeyValueStore } from '../store/index.js';

export interface RateLimitRule {
  /** Names the counter family (`session-check`, `password-login` …). */
  bucket: string;
  limit: number;
  windowMs: number;
  /** What is counted: client IP by default. */
  subject?: (req: Request) => string;
}

/** Where the counters live and whose time decides the windows (the Services object has both). */
export interface RateLimitDeps {
  store: KeyValueStore;
  clock: Clock;
}

/**
 * Fixed-window rate limiting in the shared store, so every gateway process counts together. Windows
 * are cut by the injected clock (tests move it; every process of a deployment reads the same time).
 * Over the limit: 429 `rate_limited` with Retry-After, the seconds until the window ends.
 */
export function rateLimit(deps: RateLimitDeps, rule: RateLimitRule) {
  const { store, clock } = deps;
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const subject = rule.subject ? rule.subject(req) : (req.ip ?? 'unknown');
    const now = clock.now();
    const window = Math.floor(now / rule.windowMs);
    // The counter outlives its window by construction (the key names the window; the TTL only cleans up).
    const count = await store.incr(keys.rateLimit(rule.bucket, digestForKey(`${window}:${subject}`)), rule.windowMs);
    if (count > rule.limit) {
      const endsInMs = (window + 1) * rule.windowMs - now;
      res.setHeader('Retry-After', String(Math.max(1, Math.ceil(endsInMs / 1000))));
      throw new AppError('rate_limited', { detail: `${rule.bucket} limit ${rule.limit}/${rule.windowMs}ms` });
    }
    next();
  };
}
