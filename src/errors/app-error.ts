import { ERROR_CODES, type ErrorCode } from './codes.js';

export interface AppErrorOptions {
  /** Private detail: reaches logs and the audit trail, never a response body. */
  detail?: string;
  /** A machine-readable private reason (e.g. a SAML reject reason), for logs, audit and metrics. */
  reason?: string;
  /** Public, structured extra information (safe to show), e.g. row-level validation errors. */
  details?: unknown;
  cause?: unknown;
  /** Overrides the registry's public message with a more specific, still public, sentence. */
  message?: string;
  /** When retrying may succeed, in seconds: the response's `Retry-After` header (e.g. a lock's remaining lease). */
  retryAfterSeconds?: number;
}

/**
 * The one base error of idp-bridge. It knows nothing about HTTP beyond the status in the registry;
 * the single error handler (`http/error-handler.ts`) turns it into a JSON body or an HTML page.
 */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly publicMessage: string;
  readonly detail: string | undefined;
  readonly reason: string | undefined;
  readonly details: unknown;
  readonly retryAfterSeconds: number | undefined;
  /** The tenant a refusal concerns, once the use case knows it (for the audit trail). */
  tenantDomain: string | undefined;
  /**
   * The test sign-in (docs/spec.md §11) whose login transaction this refusal answers, once the use case
   * has resolved the transaction (and the identifier the IdP asserted, when it got that far): the route
   * records the outcome there instead of showing the employee's error page.
   */
  testSignIn: { id: string; assertedId?: string } | undefined;

  constructor(code: ErrorCode, options: AppErrorOptions = {}) {
    const entry = ERROR_CODES[code];
    super(options.detail ?? options.reason ?? code, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = entry.status;
    this.publicMessage = options.message ?? entry.message;
    this.detail = options.detail;
    this.reason = options.reason;
    this.details = options.details;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError;
}

/** The store could not be reached; always 503 `store_unavailable`, never a hang. */
export class StoreUnavailableError extends AppError {
  constructor(cause: unknown) {
    super('store_unavailable', { detail: cause instanceof Error ? cause.message : String(cause), cause });
    this.name = 'StoreUnavailableError';
  }
}
