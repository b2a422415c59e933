import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from '../observability/logger.js';

declare module 'express-serve-static-core' {
  interface Locals {
    requestId: string;
    log: Logger;
    /** Browser routes answer errors with an HTML page, API routes with JSON. */
    errorFormat?: 'html' | 'json';
    /** Tenant the request concerns, once known (for logs). */
    domain?: string;
    /** A browser error page offers this link to start again. */
    retryUrl?: string;
  }
}

const INCOMING_ID_RE = /^[A-Za-z0-9._-]{8,64}$/;

/**
 * Gives every request an id (a safe incoming X-Request-Id is kept), a child logger, and one log line
 * when it ends: method, route template, status, duration. No headers, no query strings, no bodies.
 */
export function requestContext(logger: Logger) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const incoming = req.get('x-request-id');
    const requestId = incoming && INCOMING_ID_RE.test(incoming) ? incoming : randomUUID();
    res.locals.requestId = requestId;
    res.locals.log = logger.child({ reqId: requestId });
    res.setHeader('X-Request-Id', requestId);
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const route = (req.route as { path?: string } | undefined)?.path;
      res.locals.log.info(
        {
          method: req.method,
          route: route ? `${req.baseUrl}${route}` : req.path.slice(0, 200),
          status: res.statusCode,
          ms: Number(process.hrtime.bigint() - started) / 1e6,
          domain: res.locals.domain,
        },
        'request',
      );
    });
    next();
  };
}

/** Marks a router's errors as HTML pages. */
export function browserRoute(_req: Request, res: Response, next: NextFunction): void {
  res.locals.errorFormat = 'html';
  next();
}

/** Security headers for every response; pages add nothing that loads from elsewhere. */
export function securityHeaders(_req: Request, res: Response, next: NextFunction): void {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; form-action *; frame-ancestors 'none'; base-uri 'none'");
  res.setHeader('Cache-Control', 'no-store');
  next();
}
