import { Router, type Request, type Response } from 'express';
import { AppError } from '../../errors/index.js';
import type { Services } from '../../services.js';
import { cookieSettings } from '../complete-login.js';
import { readCookie } from '../cookies.js';

export function sessionRoutes(s: Services): Router {
  const router = Router();
  const cookie = cookieSettings(s);

  // Who is signed in (JSON); 401 otherwise.
  router.get('/session', async (req: Request, res: Response) => {
    const session = await s.sessions.find(readCookie(req, cookie.name));
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

  return router;
}
