import { parse, serialize } from 'cookie';
import type { Request, Response } from 'express';

export interface CookieSettings {
  name: string;
  secure: boolean;
}

export function readCookie(req: Request, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header || header.length > 8192) return undefined;
  return parse(header)[name];
}

/** The session cookie: HttpOnly, SameSite=Lax, Secure when PUBLIC_URL is https. */
export function setSessionCookie(res: Response, settings: CookieSettings, value: string, maxAgeSeconds: number): void {
  res.append(
    'Set-Cookie',
    serialize(settings.name, value, { httpOnly: true, sameSite: 'lax', secure: settings.secure, path: '/', maxAge: maxAgeSeconds }),
  );
}

export function clearSessionCookie(res: Response, settings: CookieSettings): void {
  res.append('Set-Cookie', serialize(settings.name, '', { httpOnly: true, sameSite: 'lax', secure: settings.secure, path: '/', maxAge: 0 }));
}

/**
 * The login binding cookie: a random value (256 bits, base64url) that ties each login transaction to
 * the browser that started it. The transaction keeps only its SHA-256 digest; the ACS and the OAuth
 * callback accept a transaction only from a browser carrying the value (login CSRF / session swap).
 * One browser keeps one value while it lives, so logins in two tabs both finish.
 */
export const LOGIN_BINDING_COOKIE = 'idpb_login';

export interface LoginBindingCookieSettings {
  secure: boolean;
  sameSite: 'none' | 'lax';
  /** The login transaction TTL: the cookie is not needed longer than the transactions it binds. */
  maxAgeSeconds: number;
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * The IdP's answer reaches the ACS as a cross-site top-level POST, which carries only `SameSite=None`
 * cookies, and those must be `Secure`. Browsers accept `Secure` cookies from http://localhost and
 * 127.0.0.1 (potentially trustworthy origins), so only a plain-http PUBLIC_URL on another host (a dev
 * setup) falls back to `SameSite=Lax` without `Secure`: there the OAuth callback (a top-level GET)
 * still works, but a SAML IdP on another site cannot finish a login.
 */
export function loginBindingCookieSettings(publicUrl: string, ttlSeconds: number): LoginBindingCookieSettings {
  const url = new URL(publicUrl);
  const secure = url.protocol === 'https:' || LOOPBACK_HOSTS.has(url.hostname);
  return { secure, sameSite: secure ? 'none' : 'lax', maxAgeSeconds: ttlSeconds };
}

export function setLoginBindingCookie(res: Response, settings: LoginBindingCookieSettings, value: string): void {
  res.append(
    'Set-Cookie',
    serialize(LOGIN_BINDING_COOKIE, value, { httpOnly: true, sameSite: settings.sameSite, secure: settings.secure, path: '/', maxAge: settings.maxAgeSeconds }),
  );
}

/** A query or form value that must be one string (arrays and objects from `a[]=` tricks are refused). */
export function singleString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/**
 * The console session cookie: `__Host-idpb_console` when the gateway is on https (the prefix makes the
 * browser insist on Secure, Path=/ and no Domain, so no sibling subdomain can plant or shadow it), else
 * `idpb_console`. HttpOnly; SameSite=Strict (no other site's page or link ever sends it); Path=/.
 */
export function consoleCookieName(publicUrl: string): string {
  return publicUrl.startsWith('https://') ? '__Host-idpb_console' : 'idpb_console';
}

export function setConsoleCookie(res: Response, publicUrl: string, value: string, maxAgeSeconds: number): void {
  res.append(
    'Set-Cookie',
    serialize(consoleCookieName(publicUrl), value, { httpOnly: true, sameSite: 'strict', secure: publicUrl.startsWith('https://'), path: '/', maxAge: maxAgeSeconds }),
  );
}

export function clearConsoleCookie(res: Response, publicUrl: string): void {
  res.append('Set-Cookie', serialize(consoleCookieName(publicUrl), '', { httpOnly: true, sameSite: 'strict', secure: publicUrl.startsWith('https://'), path: '/', maxAge: 0 }));
}
