import { Router, type Request, type Response } from 'express';
import { checkLogoutRedirect } from '../../domain/access-url.js';
import { TenantRepository } from '../../domain/tenants.js';
import { AppError } from '../../errors/index.js';
import type { Services } from '../../services.js';
import { clearSessionCookie, readCookie } from '../cookies.js';
import { browserRoute } from '../request-context.js';
import { signedOutPage } from '../views.js';

export function sessionRoutes(s: Services): Router {
  const router = Router();
  const cookieSettings = { name: s.config.session.cookieName, secure: s.config.publicUrl.startsWith('https://') };

  // Who is signed in (JSON); 401 otherwise.
  router.get('/session', async (req: Request, res: Response) => {
    const session = await s.sessions.find(readCookie(req, cookieSettings.name));
    const member = session ? await s.members.findById(session.domain, session.memberId) : null;
    if (!session || !member) throw new AppError('not_authenticated');
    res.json({
      member: { id: member.id, domain: member.domain, account: member.account, name: member.name, role: member.role },
      session: {
        authMethod: session.authMethod,
        clientKind: session.clientKind,
        createdAt: new Date(session.createdAt).toISOString(),
        expiresAt: new Date(session.expiresAt).toISOString(),
      },
    });
  });

  // S-19 (basic): end the session; the final hop only to the tenant's logoutRedirectDomains.
  router.get('/d/logout', browserRoute, async (req: Request, res: Response) => {
    const session = await s.sessions.destroy(readCookie(req, cookieSettings.name));
    clearSessionCookie(res, cookieSettings);
    const domain = session?.domain ?? TenantRepository.normaliseDomain(req.query.domain);
    const tenant = domain ? await s.tenants.find(domain) : null;
    if (session) {
      await s.audit.record({ type: 'session.ended', domain: session.domain, actor: `member:${session.memberId}`, requestId: res.locals.requestId, data: { by: 'logout' } });
    }
    const target = tenant ? checkLogoutRedirect(req.query.redirect_uri, tenant.logoutRedirectDomains, s.config.publicUrl.startsWith('http://')) : null;
    if (target) {
      res.redirect(302, target);
      return;
    }
    res.type('html').send(signedOutPage());
  });

  return router;
}
