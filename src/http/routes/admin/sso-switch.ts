import { Router, type Request, type Response } from 'express';
import type { Tenant } from '../../../domain/tenant.js';
import { assertUnsolicitedLanding } from '../../../domain/unsolicited-landing.js';
import { isAppError } from '../../../errors/index.js';
import type { Services } from '../../../services.js';
import { parseBody } from '../../validate.js';
import { auditAdmin, requirePermission, scopedTenant } from './context.js';
import { certificateInfo, certificateWarnings, currentSsoView, patchSchema, resolveSettings, type Problem, type ResolvedSettings } from './sso.js';

/** Switching SSO on or off, besides PATCH …/sso itself (sso.ts): its preview, and resuming an interrupted switch. */
export function ssoSwitchAdminRoutes(s: Services): Router {
  const router = Router();
  const allowHttp = s.config.env !== 'production';
  const view = (tenant: Tenant): Promise<Record<string, unknown>> => currentSsoView(s, tenant);

  // What a PATCH with this body would do, counted, without doing any of it.
  router.post('/domains/:domain/sso/preview', async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    const body = parseBody(patchSchema, req.body);
    let resolved: ResolvedSettings;
    try {
      resolved = resolveSettings(tenant.sso, body, 'merge', allowHttp, Boolean(s.sp.decryption?.length));
    } catch (err) {
      if (!isAppError(err) || err.status >= 500) throw err;
      const details = Array.isArray(err.details) ? (err.details as Problem[]) : [{ path: '', message: err.publicMessage }];
      resolved = { settings: { ...tenant.sso, ...(body.enabled === undefined ? {} : { enabled: body.enabled }) }, problems: details, warnings: [] };
    }
    const { settings, problems, warnings } = resolved;
    try {
      assertUnsolicitedLanding(settings, s.defaultServiceUrl(tenant));
    } catch (err) {
      if (!isAppError(err)) throw err;
      problems.push(...(err.details as Problem[]));
    }
    const preview = await s.ssoSwitch.preview(tenant, settings.enabled);
    warnings.push(...certificateWarnings(certificateInfo(settings.saml?.idpCertificates ?? [], s.clock.now())));
    if (preview.switching && settings.enabled) warnings.push('Switching SSO on signs every member out; from then on members sign in at the identity provider only.');
    if (preview.switching && !settings.enabled) warnings.push('Switching SSO off signs every member out and deletes every password except the super admin’s; members then need new passwords.');
    res.json({ ...preview, problems, warnings });
  });

  // Finishes a switch that a restart or a store fault interrupted.
  router.post('/domains/:domain/sso/switch/resume', async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    requirePermission(res, 'super');
    const result = await s.ssoSwitch.resume(tenant.domain);
    await auditAdmin(s, req, res, {
      type: result.tenant.sso.enabled ? 'sso.enabled' : 'sso.disabled',
      domain: tenant.domain,
      data: { resumed: true, ...result.effects },
    });
    res.json({ effects: result.effects, switched: result.switched, sso: await view(result.tenant), warnings: [] });
  });

  return router;
}
