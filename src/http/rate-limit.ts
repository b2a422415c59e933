import type { NextFunction, Request, Response } from 'express';
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

/**
 * Fixed-window rate limiting in the shared store, so every gateway process counts together.
 * Over the limit: 429 `rate_limited` with Retry-After.
 */
export function rateLimit(store: KeyValueStore, rule: RateLimitRule) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const subject = rule.subject ? rule.subject(req) : (req.ip ?? 'unknown');
    const window = Math.floor(Date.now() / rule.windowMs);
    const count = await store.incr(keys.rateLimit(rule.bucket, digestForKey(`${window}:${subject}`)), rule.windowMs);
    if (count > rule.limit) {
      res.setHeader('Retry-After', String(Math.ceil(rule.windowMs / 1000)));
      throw new AppError('rate_limited', { detail: `${rule.bucket} limit ${rule.limit}/${rule.windowMs}ms` });
    }
    next();
  };
}
