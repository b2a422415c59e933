import { parse } from 'cookie';
import type { KoaContextLike, Provider } from 'oidc-provider';
import type { Services } from '../services.js';

/** The paths of oidc-provider's end_session confirmation (RP-initiated logout), under the OP's mount. */
const CONFIRM_PATH = '/session/end/confirm';

/**
 * S-19 for RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0, `end_session_endpoint`): when the
 * user confirms signing out of the OP (not just of the one service), the gateway's web session in that
 * browser ends too, before the answer leaves, so nothing signs the browser back in silently. oidc-provider
 * ends its own session and hands the back-channel notices to backchannel-logout.ts.
 */
export function endWebSessionOnRpLogout(s: Pick<Services, 'sessions' | 'audit' | 'config'>, provider: Provider): void {
  const ended = new WeakSet<object>();
  provider.on('end_session.success', (ctx: unknown) => {
    const params = (ctx as KoaContextLike).oidc?.params;
    if (params?.logout) ended.add(ctx as object);
  });
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path !== CONFIRM_PATH || !ended.has(ctx)) return;
    const name = s.config.session.cookieName;
    const header = ctx.req.headers.cookie;
    const value = header && header.length <= 8192 ? parse(header)[name] : undefined;
    const session = await s.sessions.destroy(value);
    if (!session) return;
    ctx.append('Set-Cookie', `${name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax${s.config.publicUrl.startsWith('https://') ? '; Secure' : ''}`);
    await s.audit.record({ type: 'session.ended', domain: session.domain, actor: `member:${session.memberId}`, data: { by: 'rp_logout' } });
  });
}
