import { randomBytes, timingSafeEqual } from 'node:crypto';
import express, { Router, type Request, type Response } from 'express';
import { digestForKey, keys, type KeyValueStore } from '../store/index.js';
import { browserRoute } from '../http/request-context.js';
import { esc, page } from '../http/views.js';
import type { DemoIdpUser } from './saml-idp.js';

export interface DemoOAuthClient {
  clientId: string;
  clientSecret: string;
}

export interface DemoOAuthIdpOptions {
  publicUrl: string;
  users: readonly DemoIdpUser[];
  client: DemoOAuthClient;
  /** Where codes and tokens live: the gateway's store, shared by every worker process. */
  store: KeyValueStore;
}

const CODE_TTL_MS = 60_000;
const TOKEN_TTL_S = 3600;

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/**
 * A small IdP speaking the suite's `works` OAuth profile, for the demo (`npm start`) only: a login
 * page, an Access Token Return API and a Return User Information API (with its error codes). Never
 * mounted in production.
 *
 * Codes and tokens live in the gateway's store (by digest, with a TTL; a code is redeemed once, with
 * GETDEL), not in this process: with several workers the browser's sign-in, the gateway's token call
 * and its user-info call may each be served by another process.
 */
export function demoOAuthIdpRouter(options: DemoOAuthIdpOptions): Router {
  const router = Router();
  const callbackPrefix = `${options.publicUrl}/oauth/callback/`;
  const form = express.urlencoded({ extended: false, limit: '16kb' });

  const clientOk = (body: Record<string, unknown>): boolean =>
    str(body.client_id) === options.client.clientId && safeEqual(str(body.client_secret), options.client.clientSecret);

  const loginPage = (q: Record<string, string>, error?: string): string =>
    page(
      'Demo OAuth sign-in',
      `<h1>Demo OAuth identity provider</h1><p>This IdP speaks the suite's <code>works</code> OAuth profile and exists only for the demo.</p>
${error ? `<p role="alert"><strong>${esc(error)}</strong></p>` : ''}
<form method="post" action="/demo-idp/oauth/authorize">
${Object.entries(q)
  .map(([k, v]) => `<input type="hidden" name="${esc(k)}" value="${esc(v)}">`)
  .join('')}
<label for="username">User name</label><input id="username" name="username" type="text" autocomplete="username" autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password">
<p><button type="submit">Sign in</button></p></form>`,
    );

  const authorizeParams = (src: Record<string, unknown>): Record<string, string> => {
    const q: Record<string, string> = {};
    for (const k of ['response_type', 'client_id', 'redirect_uri', 'worksId', 'userAgent', 'sessionKey']) if (typeof src[k] === 'string') q[k] = src[k];
    if (q.response_type !== 'code' || q.client_id !== options.client.clientId || !q.redirect_uri?.startsWith(callbackPrefix)) {
      throw Object.assign(new Error('bad authorize request'), { status: 400 });
    }
    return q;
  };

  router.get('/demo-idp/oauth/authorize', browserRoute, (req: Request, res: Response) => {
    res.type('html').send(loginPage(authorizeParams(req.query)));
  });

  router.post('/demo-idp/oauth/authorize', browserRoute, form, async (req: Request, res: Response) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const q = authorizeParams(body);
    const user = options.users.find((u) => u.username === body.username);
    if (!user || !safeEqual(user.password, str(body.password))) {
      res.status(401).type('html').send(loginPage(q, 'Unknown user name or wrong password.'));
      return;
    }
    const code = randomBytes(24).toString('base64url');
    await options.store.set(keys.demoOAuthCode(digestForKey(code)), user.nameId, { ttlMs: CODE_TTL_MS });
    const back = new URL(q.redirect_uri!);
    back.searchParams.set('code', code);
    res.redirect(302, back.href);
  });

  router.post('/demo-idp/oauth/token', form, async (req: Request, res: Response) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (!clientOk(body)) return void res.status(401).json({ error: 'unauthorized_client', error_description: 'Invalid client ID or secret' });
    const code = str(body.code);
    // Single use: whoever reads it first (GETDEL) has it; expiry is the key's TTL.
    const userId = code ? await options.store.getDel(keys.demoOAuthCode(digestForKey(code))) : null;
    if (body.grant_type !== 'authorization_code' || userId === null) {
      return void res.status(400).json({ error: 'invalid_grant', error_description: 'Unknown, used or expired code' });
    }
    const accessToken = randomBytes(24).toString('base64url');
    await options.store.set(keys.demoOAuthToken(digestForKey(accessToken)), userId, { ttlMs: TOKEN_TTL_S * 1000 });
    // expires_in as a string, as some customer IdPs send it (the profile allows both).
    res.json({ access_token: accessToken, token_type: 'Bearer', expires_in: String(TOKEN_TTL_S) });
  });

  router.post('/demo-idp/oauth/userinfo', form, async (req: Request, res: Response) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (!clientOk(body)) return void res.json({ error: '301', error_description: 'unauthorized_client' });
    const accessToken = str(body.access_token);
    const userId = accessToken ? await options.store.get(keys.demoOAuthToken(digestForKey(accessToken))) : null;
    if (userId === null) return void res.json({ error: '303', error_description: 'invalid_access' });
    res.json({ user_id: userId });
  });

  return router;
}
