import { Router, type NextFunction, type Request, type Response } from 'express';
import type { AdminPrincipal } from '../../../admin/api-keys.js';
import { ConsoleSessions, type ConsoleSession, type OperatorConsoleSession } from '../../../admin/console-sessions.js';
import type { Member } from '../../../domain/member.js';
import { AppError } from '../../../errors/index.js';
import type { Services } from '../../../services.js';
import { clearConsoleCookie, consoleCookieName, readCookie } from '../../cookies.js';
import { permissionsOf, principalOf, requirePermission } from './context.js';
import { registerAdminOperations } from './openapi.js';

declare module 'express-serve-static-core' {
  interface Locals {
    /** Set when the admin API caller is a console session (no Authorization header, the console cookie). */
    console?: { session: ConsoleSession; member: Member; cookieValue: string } | { session: OperatorConsoleSession; member: null; cookieValue: string };
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD']);
const BEARER_RE = /^Bearer ([\x21-\x7e]{1,200})$/;

registerAdminOperations([
  {
    method: 'get',
    path: '/session',
    summary:
      'Who is calling and what they may do: `{kind, domain, member, csrfToken, permissions, idleExpiresAt, absoluteExpiresAt, breakGlass, signInMethod, apiKey}` (for an API key or the operator too: member and csrfToken null)',
    success: 200,
    errors: ['console_session_expired', 'csrf_failed'],
  },
  {
    method: 'delete',
    path: '/session',
    summary: 'Sign out of the console: the session ends and its cookie is cleared (with an API key: nothing changes)',
    success: 204,
    errors: ['console_session_expired', 'csrf_failed'],
  },
]);

function isAdminRole(role: Member['role']): role is 'admin' | 'super_admin' {
  return role === 'admin' || role === 'super_admin';
}

/**
 * Who calls the admin API. `Authorization: Bearer <key>` when sent (the operator key or a tenant key);
 * else the console cookie, and then:
 * - `Sec-Fetch-Site`, when the browser sends it, must be `same-origin` (403 `csrf_failed`);
 * - the session must be live (idle and absolute timeouts) and its member still an `in_use` admin or
 *   super admin, re-read now, so a demoted or suspended administrator loses access at once (401
 *   `console_session_expired`, the session ended and the cookie cleared);
 * - a request other than GET/HEAD must carry `X-CSRF-Token` equal to the session's token (403 `csrf_failed`).
 * Then every request other than GET/HEAD needs the `write` permission (a read-only key changes nothing);
 * signing out (`DELETE /session`) is not a change.
 */
export function adminAuthentication(s: Services) {
  const cookieName = consoleCookieName(s.config.publicUrl);
  const config = s.config;
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const header = req.get('authorization');
    let principal: AdminPrincipal | null;
    if (header !== undefined) {
      const match = BEARER_RE.exec(header);
      principal = match ? await s.adminKeys.resolve(match[1]) : null;
      if (!principal) {
        res.setHeader('WWW-Authenticate', 'Bearer realm="idp-bridge admin"');
        throw new AppError('unauthorized', { detail: match ? 'unknown or expired key' : 'malformed Authorization header' });
      }
    } else {
      const cookieValue = readCookie(req, cookieName);
      if (cookieValue === undefined || cookieValue === '') {
        res.setHeader('WWW-Authenticate', 'Bearer realm="idp-bridge admin"');
        throw new AppError('unauthorized', { detail: 'no bearer key and no console session' });
      }
      const site = req.get('sec-fetch-site');
      if (site !== undefined && site !== 'same-origin') {
        throw new AppError('csrf_failed', { detail: `console request not from the same origin (Sec-Fetch-Site: ${site.slice(0, 20)})` });
      }
      const session = await s.consoleSessions.use(cookieValue);
      if (!session) {
        clearConsoleCookie(res, s.config.publicUrl);
        throw new AppError('console_session_expired', { detail: 'console session unknown, signed out or timed out' });
      }
      if (session.kind === 'operator') {
        // The operator signed in with the operator key: no member to re-read. Without the key in the
        // config now (removed since), the session ends.
        if (!config.adminApiKey) {
          await s.consoleSessions.destroy(cookieValue);
          clearConsoleCookie(res, s.config.publicUrl);
          throw new AppError('console_session_expired', { detail: 'operator console session while no operator key is configured' });
        }
        if (!SAFE_METHODS.has(req.method) && !ConsoleSessions.csrfMatches(session, req.get('x-csrf-token'))) {
          throw new AppError('csrf_failed', { detail: 'X-CSRF-Token missing or not the session token' });
        }
        res.locals.admin = { kind: 'operator' };
        res.locals.console = { session, member: null, cookieValue };
        next();
        return;
      }
      res.locals.domain = session.domain;
      const member = await s.members.findById(session.domain, session.memberId);
      if (!member || member.status !== 'in_use' || !isAdminRole(member.role)) {
        await s.consoleSessions.destroy(cookieValue);
        clearConsoleCookie(res, s.config.publicUrl);
        await s.audit.record({
          type: 'console.session_ended',
          domain: session.domain,
          actor: `member:${session.memberId}`,
          requestId: res.locals.requestId,
          ip: req.ip,
          reason: !member ? 'member_deleted' : member.status !== 'in_use' ? 'member_not_active' : 'not_admin',
          data: { sessionId: session.id },
        });
        throw new AppError('console_session_expired', { detail: 'the console member is no longer an in_use admin or super admin' });
      }
      if (!SAFE_METHODS.has(req.method) && !ConsoleSessions.csrfMatches(session, req.get('x-csrf-token'))) {
        throw new AppError('csrf_failed', { detail: 'X-CSRF-Token missing or not the session token' });
      }
      principal = { kind: 'member', domain: session.domain, memberId: member.id, role: member.role, sessionId: session.id };
      res.locals.console = { session, member, cookieValue };
    }
    res.locals.admin = principal;
    const signingOut = req.method === 'DELETE' && req.path === '/session';
    if (!SAFE_METHODS.has(req.method) && !signingOut) requirePermission(res, 'write');
    next();
  };
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** `GET /session` and `DELETE /session` (sign out). */
export function sessionRoutes(s: Services): Router {
  const router = Router();

  router.get('/session', async (_req: Request, res: Response) => {
    const p = principalOf(res);
    const domain = p.kind === 'operator' ? null : p.domain;
    const tenant = domain ? await s.tenants.find(domain) : null;
    const consoleSession = res.locals.console;
    res.json({
      kind: p.kind,
      domain,
      member: consoleSession?.member ? { id: consoleSession.member.id, account: consoleSession.member.account, name: consoleSession.member.name, role: consoleSession.member.role } : null,
      csrfToken: consoleSession?.session.csrfToken ?? null,
      permissions: permissionsOf(p),
      idleExpiresAt: consoleSession ? iso(consoleSession.session.idleExpiresAt) : null,
      absoluteExpiresAt: consoleSession ? iso(consoleSession.session.absoluteExpiresAt) : null,
      breakGlass: { enabled: tenant?.superAdminBreakGlass ?? false },
      signInMethod: consoleSession?.session.method ?? null,
      apiKey: p.kind === 'tenant' ? { id: p.keyId, scope: p.scope } : null,
    });
  });

  router.delete('/session', async (req: Request, res: Response) => {
    const consoleSession = res.locals.console;
    if (consoleSession) {
      await s.consoleSessions.destroy(consoleSession.cookieValue);
      clearConsoleCookie(res, s.config.publicUrl);
      await s.audit.record({
        type: 'console.signed_out',
        domain: consoleSession.member ? consoleSession.session.domain : undefined,
        actor: consoleSession.member ? `member:${consoleSession.member.id}` : 'operator',
        requestId: res.locals.requestId,
        ip: req.ip,
        data: { sessionId: consoleSession.session.id },
      });
    }
    res.status(204).end();
  });

  return router;
}
