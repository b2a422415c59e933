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

/** A query or form value that must be one string (arrays and objects from `a[]=` tricks are refused). */
export function singleString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
