import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import { refuseWhileSso, type Invitation } from '../../admin/member-directory.js';
import { accountSchema, type Member } from '../../domain/member.js';
import { checkPasswordPolicy, hashPassword } from '../../domain/passwords.js';
import type { Tenant } from '../../domain/tenant.js';
import { AppError } from '../../errors/index.js';
import type { Services } from '../../services.js';
import { normalizeAccount, PasswordLogin } from '../../sso/password-login.js';
import type { WebSession } from '../../sso/sessions.js';
import { digestForKey, keys } from '../../store/index.js';
import { cookieSettings } from '../complete-login.js';
import { readCookie, setSessionCookie, singleString } from '../cookies.js';
import { rateLimit } from '../rate-limit.js';
import { browserRoute } from '../request-context.js';
import { parseBody } from '../validate.js';
import { esc, page } from '../views.js';
import { checkFormToken, FORM_CSRF_FIELD, issueFormToken } from './password-routes.js';

/** Per client IP: ID lookup tells whether an account exists, so it is an enumeration surface. */
export const ID_LOOKUP_RATE_LIMIT = { bucket: 'id-lookup', limit: 10, windowMs: 60_000 } as const;
/** Per client IP: accepting invitations (tokens are 256 random bits; this only bounds the hashing cost). */
export const INVITE_ACCEPT_RATE_LIMIT = { bucket: 'invite-accept', limit: 20, windowMs: 60_000 } as const;

const idLookupSchema = z.strictObject({ account: z.string().min(1).max(254) });
const passwordChangeSchema = z.strictObject({ currentPassword: z.string().min(1).max(1024), newPassword: z.string() });
const invitationSchema = z.strictObject({ account: accountSchema, name: z.string().trim().min(1).max(200) });
const appPasswordSchema = z.strictObject({ name: z.string().trim().min(1).max(100) });

const INVITE_TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;

interface Caller {
  session: WebSession;
  member: Member;
  tenant: Tenant;
}

/** Stored invitation: the member directory's record plus the digest of its token. */
type StoredInvitation = Invitation & { tokenDigest: string };

function invitationInvalid(detail: string, domain?: string): AppError {
  const err = new AppError('invitation_invalid', { detail });
  err.tenantDomain = domain;
  return err;
}

/**
 * CSRF defence of the JSON API: every write must say `Content-Type: application/json`. A cross-site
 * HTML form cannot send that type, and a cross-site script cannot without a CORS preflight, which
 * this gateway never answers. The session cookie is SameSite=Lax on top. An Origin header, when
 * sent, must be the gateway's own.
 */
function requireJsonWrites(s: Services) {
  const ownOrigin = new URL(s.config.publicUrl).origin;
  return (req: Request, _res: Response, next: NextFunction): void => {
    if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return next();
    const origin = req.get('origin');
    if (origin !== undefined && origin !== ownOrigin) throw new AppError('forbidden', { detail: 'service API write from a foreign origin', message: 'Requests from other sites are not allowed.' });
    const type = (req.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') {
      throw new AppError('unsupported_media_type', { detail: `service API write with content type ${type.slice(0, 60) || 'none'}`, message: 'Send the request body as JSON (Content-Type: application/json).' });
    }
    next();
  };
}

/**
 * The service side (S-23): a JSON API under `/api/v1` for the signed-in member (the `idpb_session`
 * cookie), and invitation acceptance (`/d/invite/{token}`, a browser form). Everything here is
 * refused with 409 `sso_enabled` while the member's tenant has SSO on.
 */
export function serviceRoutes(s: Services): Router {
  const router = Router();
  const api = Router();
  const cookie = cookieSettings(s);
  const passwordLogin = new PasswordLogin(s.members, s.store, s.clock);

  /** The signed-in member, or 401 `not_authenticated`. */
  async function caller(req: Request, res: Response): Promise<Caller> {
    const session = await s.sessions.find(readCookie(req, cookie.name));
    const member = session ? await s.members.findById(session.domain, session.memberId) : null;
    if (!session || !member || member.status !== 'in_use') throw new AppError('not_authenticated');
    const tenant = await s.tenants.load(session.domain);
    res.locals.domain = tenant.domain;
    return { session, member, tenant };
  }

  const audit = (req: Request, res: Response, who: Caller, type: string, data: Record<string, string | number | boolean | null>): Promise<void> =>
    s.audit.record({ type, domain: who.tenant.domain, actor: `member:${who.member.id}`, requestId: res.locals.requestId, ip: req.ip, data });

  api.use(requireJsonWrites(s));
  api.use(express.json({ limit: '4kb', strict: true, type: 'application/json' }));

  // Does an account exist in the caller's organisation?
  api.post('/id-lookup', rateLimit(s, ID_LOOKUP_RATE_LIMIT), async (req: Request, res: Response) => {
    const who = await caller(req, res);
    refuseWhileSso(who.tenant, 'ID lookup');
    const { account } = parseBody(idLookupSchema, req.body);
    const found = await s.members.findByAccount(who.tenant.domain, normalizeAccount(account));
    res.json({ exists: found !== null });
  });

  // The member changes their own password. Every other session of the member ends; this browser
  // stays signed in, under a fresh session id with the same expiry (the id rotates on a credential change).
  api.post('/me/password', async (req: Request, res: Response) => {
    const who = await caller(req, res);
    refuseWhileSso(who.tenant, 'Changing your password');
    const body = parseBody(passwordChangeSchema, req.body);
    await passwordLogin.verifyCurrentPassword(who.tenant, who.member, body.currentPassword);
    // Policy check, hash, store, end all of the member's sessions (MemberDirectory keeps S-23 in one place).
    await s.memberDirectory.setPassword(who.tenant, who.member, body.newPassword);
    const { session } = who;
    const remainingMs = Math.max(session.expiresAt - s.clock.now(), 60_000);
    const { id } = await s.sessions.create(
      { memberId: session.memberId, domain: session.domain, account: session.account, authMethod: session.authMethod, clientKind: session.clientKind, nameId: session.nameId, sessionIndex: session.sessionIndex },
      remainingMs,
    );
    setSessionCookie(res, cookie, id, Math.floor(remainingMs / 1000));
    await audit(req, res, who, 'member.password_changed', { memberId: who.member.id, by: 'self' });
    res.status(204).end();
  });

  // An admin invites a new member: a pending member and a single-use link, shown once.
  api.post('/invitations', async (req: Request, res: Response) => {
    const who = await caller(req, res);
    refuseWhileSso(who.tenant, 'Inviting members');
    if (who.member.role !== 'admin' && who.member.role !== 'super_admin') {
      throw new AppError('forbidden', { detail: `invitation by a ${who.member.role}`, message: 'Only administrators can invite members.' });
    }
    const body = parseBody(invitationSchema, req.body);
    const member = await s.memberDirectory.create(who.tenant, { account: body.account, name: body.name, role: 'member', status: 'pending' });
    const { invitation, token } = await s.memberDirectory.invite(who.tenant, member);
    await audit(req, res, who, 'member.created', { memberId: member.id, status: member.status, role: member.role, withPassword: false });
    await audit(req, res, who, 'invitation.created', { memberId: member.id, invitationId: invitation.id });
    res.status(201).json({
      memberId: member.id,
      invitation: { id: invitation.id, url: `${s.config.publicUrl}/d/invite/${token}`, expiresAt: new Date(invitation.expiresAt).toISOString() },
    });
  });

  // A third-party app password for the member (mail clients …), shown once.
  api.post('/me/app-passwords', async (req: Request, res: Response) => {
    const who = await caller(req, res);
    refuseWhileSso(who.tenant, 'Creating third-party app passwords');
    const { name } = parseBody(appPasswordSchema, req.body);
    const { appPassword, password } = await s.memberDirectory.createAppPassword(who.tenant, who.member, name);
    await audit(req, res, who, 'app_password.created', { memberId: who.member.id, appPasswordId: appPassword.id });
    res.status(201).json({ id: appPassword.id, name: appPassword.name, createdAt: new Date(appPassword.createdAt).toISOString(), password });
  });

  router.use('/api/v1', api);

  // ---- invitation acceptance (browser) ----

  /** The live invitation a link names, or 400 `invitation_invalid`; 409 `sso_enabled` while SSO is on. */
  async function openInvitation(rawToken: unknown, res: Response): Promise<{ tenant: Tenant; invitation: StoredInvitation; member: Member; tokenDigest: string }> {
    const token = singleString(rawToken);
    if (!token || !INVITE_TOKEN_RE.test(token)) throw invitationInvalid('malformed invitation token');
    const tokenDigest = digestForKey(token);
    const ref = await s.store.get(keys.invitationByToken(tokenDigest));
    const [domain, id] = ref?.split(' ') ?? [];
    if (!domain || !id) throw invitationInvalid('unknown or used invitation token');
    const tenant = await s.tenants.load(domain).catch((err: unknown) => {
      throw err instanceof AppError && err.code === 'tenant_not_found' ? invitationInvalid('tenant of the invitation is gone') : err;
    });
    res.locals.domain = tenant.domain;
    refuseWhileSso(tenant, 'Accepting an invitation');
    const raw = await s.store.hGet(keys.invitations(domain), id);
    if (!raw) throw invitationInvalid('invitation withdrawn', domain);
    const invitation = JSON.parse(raw) as StoredInvitation;
    if (invitation.tokenDigest !== tokenDigest) throw invitationInvalid('token does not match the invitation', domain);
    if (invitation.expiresAt <= s.clock.now()) {
      await s.store.hDel(keys.invitations(domain), id);
      await s.store.del(keys.invitationByToken(tokenDigest));
      throw invitationInvalid('invitation expired', domain);
    }
    const member = await s.members.findById(domain, invitation.memberId);
    if (!member || member.status !== 'pending') throw invitationInvalid('member of the invitation is not pending', domain);
    return { tenant, invitation, member, tokenDigest };
  }

  const invitePage = (tenant: Tenant, member: Member, token: string, csrf: string): string =>
    page(
      'Set your password',
      `<h1>Welcome to ${esc(tenant.name)}</h1><p>Choose a password for <code>${esc(member.account)}</code>.</p>
<form method="post" action="/d/invite/${esc(token)}">
<input type="hidden" name="${FORM_CSRF_FIELD}" value="${esc(csrf)}">
<input type="text" name="account" value="${esc(member.account)}" autocomplete="username" hidden readonly>
<label for="password">New password</label><input type="password" id="password" name="password" autocomplete="new-password" minlength="${tenant.passwordPolicy.minLength}" maxlength="256" required autofocus>
<p class="ref">At least ${tenant.passwordPolicy.minLength} characters${tenant.passwordPolicy.requireDigit ? ', with a digit' : ''}${tenant.passwordPolicy.requireMixedCase ? ', with upper- and lower-case letters' : ''}.</p>
<p><button type="submit">Set password</button></p>
</form>`,
    );

  router.get('/d/invite/:token', browserRoute, async (req: Request, res: Response) => {
    const { tenant, member } = await openInvitation(req.params.token, res);
    res.status(200).type('html').send(invitePage(tenant, member, String(req.params.token), issueFormToken(s, req, res)));
  });

  router.post(
    '/d/invite/:token',
    browserRoute,
    rateLimit(s, INVITE_ACCEPT_RATE_LIMIT),
    express.urlencoded({ extended: false, limit: '4kb', parameterLimit: 10 }),
    async (req: Request, res: Response) => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      checkFormToken(s, req, body[FORM_CSRF_FIELD]);
      const { tenant, invitation, member, tokenDigest } = await openInvitation(req.params.token, res);
      res.locals.retryUrl = `/d/invite/${String(req.params.token)}`;
      // Policy first: a password the policy refuses must not use the link up.
      const passwordHash = await hashPassword(checkPasswordPolicy(tenant.passwordPolicy, singleString(body.password)));
      // Single use: whoever deletes the token record first wins; the invitation record must still be there too
      // (an SSO switch withdraws all invitations, S-21).
      if ((await s.store.getDel(keys.invitationByToken(tokenDigest))) === null) throw invitationInvalid('invitation used concurrently', tenant.domain);
      if ((await s.store.hDel(keys.invitations(tenant.domain), invitation.id)) === 0) throw invitationInvalid('invitation withdrawn concurrently', tenant.domain);
      const current = await s.members.findById(tenant.domain, member.id);
      if (!current || current.status !== 'pending') throw invitationInvalid('member changed concurrently', tenant.domain);
      await s.members.replace({ ...current, passwordHash, status: 'in_use' });
      res.locals.retryUrl = undefined;
      await s.audit.record({
        type: 'invitation.accepted',
        domain: tenant.domain,
        actor: `member:${member.id}`,
        requestId: res.locals.requestId,
        ip: req.ip,
        data: { memberId: member.id, invitationId: invitation.id },
      });
      res
        .status(200)
        .type('html')
        .send(
          page(
            'Password set',
            `<h1>Your password is set</h1><p>You can now sign in to ${esc(tenant.name)} as <code>${esc(current.account)}</code>.</p>
<p><a class="button" href="/d/password-login/${esc(tenant.domain)}">Sign in</a></p>`,
          ),
        );
    },
  );

  return router;
}
