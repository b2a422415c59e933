import type { Strategy } from 'passport';

/**
 * Passport is used at this one seam only. A strategy is run against a small synthetic request and
 * its callbacks become a promise, so route code stays plain async/await and no business logic lives
 * in verify callbacks (after Backstage's PassportHelpers).
 */
export type StrategyOutcome =
  | { kind: 'success'; user: unknown; info: unknown }
  | { kind: 'redirect'; url: string; status: number }
  | { kind: 'fail'; challenge: unknown; status: number | undefined }
  | { kind: 'pass' };

export interface SeamRequest {
  query: Record<string, string>;
  body: Record<string, string>;
  headers: Record<string, string>;
  url: string;
  /** Per-tenant protocol options, read back by the strategy's options callback. */
  strategyOptions: unknown;
}

interface CallbackStrategy {
  success(user: unknown, info?: unknown): void;
  fail(challenge?: unknown, status?: number): void;
  redirect(url: string, status?: number): void;
  pass(): void;
  error(err: unknown): void;
  authenticate(req: unknown, options?: unknown): void;
}

export function runStrategy(strategy: Strategy, req: SeamRequest, options: Record<string, unknown> = {}): Promise<StrategyOutcome> {
  return new Promise<StrategyOutcome>((resolve, reject) => {
    const s = Object.create(strategy) as CallbackStrategy;
    s.success = (user, info) => resolve({ kind: 'success', user, info });
    s.fail = (challenge, status) => resolve({ kind: 'fail', challenge, status });
    s.redirect = (url, status = 302) => resolve({ kind: 'redirect', url, status });
    s.pass = () => resolve({ kind: 'pass' });
    s.error = (err) => reject(err instanceof Error ? err : new Error(String(err)));
    try {
      s.authenticate(req, { session: false, ...options });
    } catch (err) {
      reject(err instanceof Error ? err : new Error(String(err)));
    }
  });
}
