import { readFile } from 'node:fs/promises';
import express, { Router, type NextFunction, type Request, type Response } from 'express';
import type { Config } from '../../config/index.js';
import { page } from '../views.js';

/**
 * The admin console's CSP (docs/plan-12): the built files only, no inline script or style, API calls to
 * this origin only. Replaces the gateway-wide policy of securityHeaders for these responses.
 */
export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** dist/console of this checkout, from src/http/routes (tsx) and dist/http/routes (built) alike. */
const DEFAULT_DIR = decodeURIComponent(new URL('../../../dist/console/', import.meta.url).pathname);

export interface ConsoleStaticOptions {
  /** The built console (`npm run build`); tests may point elsewhere. */
  dir?: string;
}

/**
 * Serves the admin console's built files at /console: hashed /console/assets/* cached for a year
 * (immutable), every other non-file path answered with index.html (history routing), and a 503 page
 * saying how to build it when dist/console is missing. /console/auth/* is left to the console's
 * sign-in routes.
 */
export function consoleStaticRoutes(_config: Pick<Config, 'env'>, options: ConsoleStaticOptions = {}): Router {
  const dir = options.dir ?? DEFAULT_DIR;
  const router = Router();

  router.use('/console', (req: Request, res: Response, next: NextFunction) => {
    if (req.path === '/auth' || req.path.startsWith('/auth/')) {
      next('router');
      return;
    }
    res.setHeader('Content-Security-Policy', CONSOLE_CSP);
    next();
  });

  router.use(
    '/console/assets',
    express.static(`${dir}assets`, {
      index: false,
      redirect: false,
      dotfiles: 'ignore',
      // File names carry a content hash. Set here: serve-static keeps the no-store of securityHeaders otherwise.
      setHeaders: (res) => res.setHeader('Cache-Control', 'public, max-age=31536000, immutable'),
    }),
  );

  const sendIndex = async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      next();
      return;
    }
    if (req.baseUrl === '' && req.path === '/console') {
      res.redirect(301, '/console/');
      return;
    }
    // A path that names a file (an asset that does not exist) is a 404, not the app.
    const last = req.path.split('/').pop() ?? '';
    if (req.path.startsWith('/console/assets/') || (last.includes('.') && last !== 'index.html')) {
      next();
      return;
    }
    let html: string;
    try {
      html = await readFile(`${dir}index.html`, 'utf8');
    } catch {
      // Not built: the gateway-wide CSP (this page has an inline style), never cached.
      res.setHeader('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'");
      res
        .status(503)
        .type('html')
        .send(page('Console not built', '<h1>Console not built</h1><p>The admin console has not been built on this server: run <code>npm run build</code>.</p>'));
      return;
    }
    res.setHeader('Cache-Control', 'no-cache');
    res.type('html').send(html);
  };
  router.get(['/console', '/console/', '/console/*path'], sendIndex);
  return router;
}
