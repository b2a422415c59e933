import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

declare module 'express-serve-static-core' {
  interface Locals {
    requestId: string;
    log: Logger;
    /** Browser routes answer errors with an HTML page, API routes with JSON. */
    errorFormat?: 'html' | 'json' | 'scim';
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
export function requestContext(logger: Logger, metrics?: Metrics) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const incoming = req.get('x-request-id');
    const requestId = incoming && INCOMING_ID_RE.test(incoming) ? incoming : randomUUID();
    res.locals.requestId = requestId;
    res.locals.log = logger.child({ reqId: requestId });
    res.setHeader('X-Request-Id', requestId);
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const template = (req.route as { path?: string } | undefined)?.path;
      const route = template ? `${req.baseUrl}${template}` : req.path.slice(0, 200);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      res.locals.log.info({ method: req.method, route, status: res.statusCode, ms: seconds * 1000, domain: res.locals.domain }, 'request');
      if (metrics) {
        // Unmatched paths (404s, probes) share one label: a scanner must not create a series per URL.
        metrics.httpDuration.observe({ method: req.method, route: template ? route : 'unmatched', status_class: `${Math.floor(res.statusCode / 100)}xx` }, seconds);
        if (res.locals.errorCode === 'store_unavailable') metrics.storeErrors.inc({ source: 'request' });
      }
    });
    next();
  };
}

/** Marks a router's errors as HTML pages. */
export function browserRoute(_req: Request, res: Response, next: NextFunction): void {
  res.locals.errorFormat = 'html';
  next();
}

/**
 * Security headers for every response; pages add nothing that loads from elsewhere.
 *
 * `Referrer-Policy: same-origin`: other sites (IdPs, services) get no Referer at all, as with
 * `no-referrer`, but the browser keeps telling the gateway itself where its own form posts come from —
 * under `no-referrer` Chromium sends `Origin: null` even on a same-origin form post.
 */
export function securityHeaders(_req: Request, res: Response, next: NextFunction): void {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'same-origin');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; form-action *; frame-ancestors 'none'; base-uri 'none'");
  res.setHeader('Cache-Control', 'no-store');
  next();
}
