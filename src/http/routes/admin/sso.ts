import express, { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { fetchMetadata } from '../../../admin/metadata-fetch.js';
import { oauthSettingsSchema, ssoSettingsSchema, type SsoSettings, type Tenant } from '../../../domain/tenant.js';
import { AppError, isAppError } from '../../../errors/index.js';
import type { Services } from '../../../services.js';
import { normaliseCertificatePem } from '../../../sso/saml/certificates.js';
import { applyIdpMetadata, parseIdpMetadata } from '../../../sso/saml/idp-metadata.js';
import { parseBody } from '../../validate.js';
import { auditAdmin, scopedTenant } from './context.js';
import { tenantView } from './domains.js';

/**
 * The body of PUT …/sso (docs/spec.md §11). Fields left out keep their stored values (switching SSO off does
 * not lose the IdP configuration); `oauth.clientSecret` may be left out to keep the stored secret.
 */
const putSchema = z.strictObject({
  enabled: z.boolean(),
  type: ssoSettingsSchema.shape.type.unwrap().optional(),
  userKey: ssoSettingsSchema.shape.userKey.unwrap().optional(),
  setExpireTime: z.boolean().optional(),
  webLoginUrl: z.string().url().optional(),
  appLoginUrl: z.string().url().optional(),
  logoutUrl: z.string().url().optional(),
  saml: ssoSettingsSchema.shape.saml,
  oauth: oauthSettingsSchema.extend({ clientSecret: z.string().min(1).max(4096).optional() }).optional(),
});

function urlProblems(settings: z.infer<typeof putSchema>, allowHttp: boolean): Array<{ path: string; message: string }> {
  const urls: Array<[string, string | undefined]> = [
    ['webLoginUrl', settings.webLoginUrl],
    ['appLoginUrl', settings.appLoginUrl],
    ['logoutUrl', settings.logoutUrl],
    ['saml.idpSloUrl', settings.saml?.idpSloUrl],
    ['oauth.tokenUrl', settings.oauth?.tokenUrl],
    ['oauth.userInfoUrl', settings.oauth?.userInfoUrl],
    ['oauth.issuer', settings.oauth?.issuer],
  ];
  return urls
    .filter(([, u]) => u !== undefined && !(u.startsWith('https://') || (allowHttp && u.startsWith('http://'))))
    .map(([path]) => ({ path, message: 'must be an https URL' }));
}

/** What an enabled configuration needs to work at all. */
function completenessProblems(s: SsoSettings): Array<{ path: string; message: string }> {
  if (!s.enabled) return [];
  const need: Array<[string, unknown]> =
    s.type === 'saml'
      ? [
          ['webLoginUrl', s.webLoginUrl],
          ['saml.idpEntityId', s.saml?.idpEntityId],
          ['saml.idpCertificates', s.saml?.idpCertificates.length ? true : undefined],
        ]
      : s.oauth?.profile === 'oidc'
        ? [
            ['oauth.issuer', s.oauth.issuer],
            ['oauth.clientId', s.oauth.clientId],
          ]
        : [
            ['webLoginUrl', s.webLoginUrl],
            ['oauth.clientId', s.oauth?.clientId],
            ['oauth.tokenUrl', s.oauth?.tokenUrl],
            ['oauth.userInfoUrl', s.oauth?.userInfoUrl],
          ];
  return need.filter(([, v]) => !v).map(([path]) => ({ path, message: 'is required to enable SSO' }));
}

export function ssoAdminRoutes(s: Services): Router {
  const router = Router();
  const allowHttp = s.config.env !== 'production';

  router.get('/domains/:domain/sso', async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    res.json({ ...(tenantView(tenant).sso as object), switchInProgress: await s.ssoSwitch.pendingJob(tenant.domain) });
  });

  // S-21 … S-25: settings, and the side effects of switching, with their counts.
  router.put('/domains/:domain/sso', async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    const body = parseBody(putSchema, req.body);
    const problems = urlProblems(body, allowHttp);
    let certificates: string[] | undefined;
    try {
      certificates = body.saml?.idpCertificates.map(normaliseCertificatePem);
    } catch (err) {
      if (isAppError(err)) throw new AppError(err.code, { message: err.publicMessage, details: [{ path: 'saml.idpCertificates', message: err.publicMessage }] });
      throw err;
    }
    const secret = body.oauth ? (body.oauth.clientSecret ?? tenant.sso.oauth?.clientSecret) : undefined;
    if (body.oauth && !secret) problems.push({ path: 'oauth.clientSecret', message: 'is required' });
    const stored = tenant.sso;
    const settings: SsoSettings = {
      enabled: body.enabled,
      type: body.type ?? stored.type,
      userKey: body.userKey ?? stored.userKey,
      setExpireTime: body.setExpireTime ?? stored.setExpireTime,
      webLoginUrl: body.webLoginUrl ?? stored.webLoginUrl,
      appLoginUrl: body.appLoginUrl ?? stored.appLoginUrl,
      logoutUrl: body.logoutUrl ?? stored.logoutUrl,
      saml: body.saml ? { ...body.saml, idpCertificates: certificates ?? [] } : stored.saml,
      oauth: body.oauth ? { ...body.oauth, clientSecret: secret! } : stored.oauth,
    };
    problems.push(...completenessProblems(settings));
    if (problems.length) throw new AppError('validation_failed', { details: problems, detail: problems.map((p) => p.path).join(',') });

    const result = await s.ssoSwitch.apply(tenant, settings);
    const warnings: string[] = [];
    // S-3: accounts change on rename or relocation; external keys do not.
    if (settings.userKey === 'account') warnings.push('userKey "account": accounts can change when a member is renamed or relocated; an external key is safer.');
    await auditAdmin(s, req, res, {
      type: result.switched ? (settings.enabled ? 'sso.enabled' : 'sso.disabled') : 'sso.updated',
      domain: tenant.domain,
      data: { type: settings.type, userKey: settings.userKey, ...(result.switched ? result.effects : {}) },
    });
    res.json({ effects: result.effects, switched: result.switched, sso: (tenantView(result.tenant) as { sso: unknown }).sso, warnings });
  });

  // S-12: IdP metadata as an XML body, or {"url"} fetched behind the outbound policy (SSRF guard).
  router.post(
    '/domains/:domain/saml/idp-metadata',
    express.text({ type: ['application/xml', 'text/xml', 'application/samlmetadata+xml'], limit: '1mb' }),
    async (req: Request, res: Response) => {
      const tenant = await scopedTenant(s, req, res);
      let xml: string;
      if (typeof req.body === 'string') xml = req.body;
      else {
        const body = parseBody(z.strictObject({ url: z.string().url() }), req.body);
        xml = await fetchMetadata(body.url, { policy: s.outboundPolicy, allowHttp });
      }
      const metadata = parseIdpMetadata(xml);
      const sso = applyIdpMetadata({ ...tenant.sso, type: 'saml' }, metadata, xml);
      const saved: Tenant = await s.tenants.save({ ...tenant, sso });
      await auditAdmin(s, req, res, { type: 'idp_metadata.imported', domain: tenant.domain, data: { certificates: metadata.signingCertificates.length } });
      res.json({
        entityId: metadata.entityId,
        ssoUrl: metadata.ssoUrl,
        sloUrl: metadata.sloUrl ?? null,
        certificates: metadata.signingCertificates.length,
        warnings: metadata.warnings,
        sso: (tenantView(saved) as { sso: unknown }).sso,
      });
    },
  );

  return router;
}

export const ssoBodies = { put: putSchema, metadataUrl: z.strictObject({ url: z.string().url() }) };
