import type { NextFunction, Request, Response } from 'express';
import { AppError, isAppError } from '../errors/index.js';
import { scimErrorBody } from '../scim/scim-errors.js';
import { errorPage } from './views.js';

/** Maps errors thrown by body parsers and Express itself onto our codes. */
function toAppError(err: unknown): AppError {
  if (isAppError(err)) return err;
  const e = err as { type?: string; status?: number; statusCode?: number } | undefined;
  switch (e?.type) {
    case 'entity.too.large':
      return new AppError('payload_too_large', { cause: err });
    case 'entity.parse.failed':
    case 'request.aborted':
    case 'request.size.invalid':
    case 'parameters.too.many':
      return new AppError('bad_request', { detail: e.type, cause: err });
    case 'charset.unsupported':
    case 'encoding.unsupported':
      return new AppError('unsupported_media_type', { detail: e.type, cause: err });
  }
  const status = e?.status ?? e?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) return new AppError('bad_request', { detail: `http ${status}`, cause: err });
  return new AppError('internal_error', { cause: err });
}

/**
 * The one place that turns errors into responses. 4xx carry the public code and message; 5xx are
 * generic. Private detail and reasons go to the log with the request id, which the page shows as the
 * support reference.
 */
export function errorHandler() {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const appErr = toAppError(err);
    res.locals.errorCode = appErr.code;
    const log = res.locals.log;
    const fields = {
      errorCode: appErr.code,
      reason: appErr.reason,
      detail: appErr.detail,
      status: appErr.status,
      domain: res.locals.domain,
    };
    if (appErr.status >= 500) log?.error({ ...fields, err: appErr.code === 'internal_error' ? err : undefined }, 'request failed');
    else log?.warn(fields, 'request refused');
    if (res.headersSent) {
      req.socket.destroy();
      return;
    }
    res.status(appErr.status);
    if (appErr.retryAfterSeconds !== undefined) res.set('Retry-After', String(Math.max(1, Math.ceil(appErr.retryAfterSeconds))));
    if (res.locals.errorFormat === 'scim') {
      // SCIM clients (Entra ID, Okta …) read RFC 7644 §3.12 bodies.
      res.type('application/scim+json').send(JSON.stringify(scimErrorBody(appErr, res.locals.requestId)));
      return;
    }
    const wantsHtml = res.locals.errorFormat === 'html';
    if (wantsHtml) {
      res.type('html').send(errorPage({ code: appErr.code, message: appErr.publicMessage, requestId: res.locals.requestId, retryUrl: res.locals.retryUrl }));
      return;
    }
    const body: Record<string, unknown> = { error: appErr.code, message: appErr.publicMessage, requestId: res.locals.requestId };
    if (appErr.details !== undefined && appErr.status < 500) body.details = appErr.details;
    res.json(body);
  };
}

export function notFoundHandler(_req: Request, _res: Response, next: NextFunction): void {
  next(new AppError('not_found'));
}
