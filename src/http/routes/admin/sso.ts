import { X509Certificate } from 'node:crypto';
import express, { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { readFetchedMetadata, refreshStatusView } from '../../../admin/idp-metadata-refresh.js';
import { fetchMetadata } from '../../../admin/metadata-fetch.js';
import type { PendingSwitch } from '../../../admin/sso-switch.js';
import { assertUnsolicitedLanding } from '../../../domain/unsolicited-landing.js';
import { oauthSettingsSchema, samlSettingsSchema, ssoSettingsSchema, type SsoSettings, type Tenant } from '../../../domain/tenant.js';
import { AppError, isAppError } from '../../../errors/index.js';
import type { Services } from '../../../services.js';
import { normaliseCertificatePem } from '../../../sso/saml/certificates.js';
import { applyIdpMetadata, parseIdpMetadata } from '../../../sso/saml/idp-metadata.js';
import { acsUrl, sloUrl, spEntityId } from '../../../sso/saml/options.js';
import { parseBody } from '../../validate.js';
import { actorOf, auditAdmin, requirePermission, scopedTenant } from './context.js';
import { tenantView } from './domains.js';

const DAY_MS = 24 * 3600_000;
/** A certificate expiring within this is flagged `expiresSoon`. */
const EXPIRES_SOON_MS = 30 * DAY_MS;

/** What GET …/sso adds to the settings; PUT and PATCH accept these keys back and ignore them. */
const readOnlyKeys = {
  certificates: z.array(z.unknown()).optional().describe('Read-only (from GET): ignored.'),
  sp: z.unknown().optional().describe('Read-only (from GET): ignored.'),
  switchInProgress: z.unknown().optional().describe('Read-only (from GET): ignored.'),
  idpMetadataRefresh: z.unknown().optional().describe('Read-only (from GET): ignored.'),
};
const clientSecretSet = z.boolean().optional().describe('Read-only (from GET): ignored. Leave clientSecret out to keep the stored secret.');
const idpMetadataXml = z
  .string()
  .max(1_000_000)
  .optional()
  .describe('IdP metadata XML: its entity ID, SSO URL (webLoginUrl), SLO URL and signing certificates are applied over the other fields.');

/**
 * The body of PUT …/sso (docs/spec.md §11): the settings GET returns, read-only keys ignored. Top-level
 * fields left out keep their stored values (switching SSO off does not lose the IdP configuration);
 * `saml` and `oauth`, when given, replace the stored ones, except that `oauth.clientSecret` may be left
 * out to keep the stored secret.
 */
const putSchema = z.strictObject({
  enabled: z.boolean(),
  type: ssoSettingsSchema.shape.type.unwrap().optional(),
  userKey: ssoSettingsSchema.shape.userKey.unwrap().optional(),
  setExpireTime: z.boolean().optional(),
  webLoginUrl: z.string().url().optional(),
  appLoginUrl: z.string().url().optional(),
  logoutUrl: z.string().url().optional(),
  saml: samlSettingsSchema.extend({ idpEntityId: samlSettingsSchema.shape.idpEntityId.optional(), idpMetadataXml }).optional(),
  oauth: oauthSettingsSchema.extend({ clientSecret: z.string().min(1).max(4096).optional(), clientSecretSet }).optional(),
  ...readOnlyKeys,
});
type PutBody = z.infer<typeof putSchema>;

/** Optional, and `null` removes the stored value. */
const clearableUrl = z.string().url().nullable().optional();

/** PATCH …/sso: any subset of the PUT body; `saml` and `oauth` are merged field by field with the stored ones. */
export const patchSchema = z.strictObject({
  enabled: z.boolean().optional(),
  type: ssoSettingsSchema.shape.type.unwrap().optional(),
  userKey: ssoSettingsSchema.shape.userKey.unwrap().optional(),
  setExpireTime: z.boolean().optional(),
  webLoginUrl: clearableUrl,
  appLoginUrl: clearableUrl,
  logoutUrl: clearableUrl,
  saml: z
    .strictObject({
      idpEntityId: z.string().min(1).max(1024).optional(),
      idpCertificates: z.array(z.string()).max(2).optional(),
      spEntityId: z.string().min(1).max(1024).nullable().optional(),
      allowUnsolicited: z.boolean().optional(),
      signAuthnRequests: z.boolean().optional(),
      allowSha1: z.boolean().optional(),
      requireEncryptedAssertions: z.boolean().optional().describe('Refuse plaintext assertions: the IdP must encrypt them to the SP encryption certificate of the SP metadata (the gateway needs saml.decryption).'),
      idpSloUrl: clearableUrl,
      idpMetadataXml,
      requireSignedAssertions: z.boolean().optional(),
      idpMetadataUrl: clearableUrl,
      requireSignedMetadata: z.boolean().optional(),
      metadataSigningCertificate: z.string().nullable().optional(),
      // d-saml-authn: the AuthnRequest options (S-7a); null restores the default.
      nameIdFormat: samlSettingsSchema.shape.nameIdFormat.unwrap().nullable().optional(),
      forceAuthn: z.boolean().nullable().optional(),
      requestedAuthnContext: samlSettingsSchema.shape.requestedAuthnContext.unwrap().nullable().optional(),
      authnRequestBinding: samlSettingsSchema.shape.authnRequestBinding.unwrap().nullable().optional(),
    })
    .optional(),
  oauth: z
    .strictObject({
      profile: z.enum(['works', 'oidc']).optional(),
      clientId: z.string().min(1).max(512).optional(),
      clientSecret: z.string().min(1).max(4096).optional(),
      clientSecretSet,
      tokenUrl: clearableUrl,
      userInfoUrl: clearableUrl,
      issuer: clearableUrl,
      userKeyClaim: z.string().min(1).max(200).optional(),
      scopes: z.array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/)).optional(),
    })
    .optional(),
  ...readOnlyKeys,
});
type PatchBody = z.infer<typeof patchSchema>;

export const testSignInSchema = z.strictObject({});

export type Problem = { path: string; message: string };

function urlProblems(settings: SsoSettings, allowHttp: boolean): Problem[] {
  const urls: Array<[string, string | undefined]> = [
    ['webLoginUrl', settings.webLoginUrl],
    ['appLoginUrl', settings.appLoginUrl],
    ['logoutUrl', settings.logoutUrl],
    ['saml.idpSloUrl', settings.saml?.idpSloUrl],
    ['saml.idpMetadataUrl', settings.saml?.idpMetadataUrl],
    ['oauth.tokenUrl', settings.oauth?.tokenUrl],
    ['oauth.userInfoUrl', settings.oauth?.userInfoUrl],
    ['oauth.issuer', settings.oauth?.issuer],
  ];
  return urls
    .filter(([, u]) => u !== undefined && !(u.startsWith('https://') || (allowHttp && u.startsWith('http://'))))
    .map(([path]) => ({ path, message: 'must be an https URL' }));
}

/** What a configuration needs to sign anybody in (`enabled` settings, or a test sign-in). */
export function completenessProblems(s: SsoSettings, why = 'is required to enable SSO'): Problem[] {
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
  return need.filter(([, v]) => !v).map(([path]) => ({ path, message: why }));
}

/** A copy without the keys whose value is undefined; keys whose value is null are removed from `base`. */
function mergeFields<T extends object>(base: Partial<T>, patch: Record<string, unknown>, ignore: string[] = []): Partial<T> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    if (ignore.includes(k) || v === undefined) continue;
    if (v === null) delete out[k];
    else out[k] = v;
  }
  return out as Partial<T>;
}

export interface ResolvedSettings {
  settings: SsoSettings;
  /** Validation problems (url, completeness, missing fields): PUT and PATCH refuse with them, preview lists them. */
  problems: Problem[];
  warnings: string[];
}

/**
 * The settings a PUT (`replace`: saml / oauth given replace the stored ones) or a PATCH (`merge`: field by
 * field) would store. Certificates are normalised and `saml.idpMetadataXml` applied; an unusable
 * certificate or metadata document throws its own error (`certificate_not_pem`, `idp_metadata_invalid` …)
 * with the field's path in `details`. `canDecrypt`: the gateway has an SP decryption key (saml.decryption);
 * without one, a body setting `saml.requireEncryptedAssertions: true` is a problem.
 */
export function resolveSettings(stored: SsoSettings, body: PutBody | PatchBody, mode: 'replace' | 'merge', allowHttp: boolean, canDecrypt: boolean): ResolvedSettings {
  const problems: Problem[] = [];
  // b-saml-enc: requiring encrypted assertions without a key to open them would refuse every login.
  if (body.saml?.requireEncryptedAssertions === true && !canDecrypt) {
    problems.push({ path: 'saml.requireEncryptedAssertions', message: 'needs an SP decryption key on the gateway (saml.decryption); none is configured' });
  }
  const warnings: string[] = [];
  const top = mergeFields<SsoSettings>(stored, { ...body, saml: undefined, oauth: undefined, certificates: undefined, sp: undefined, switchInProgress: undefined, idpMetadataRefresh: undefined });

  let saml: Record<string, unknown> | undefined = stored.saml;
  if (body.saml) {
    const base: Record<string, unknown> = mode === 'merge' ? { ...stored.saml } : { allowUnsolicited: false, signAuthnRequests: false, allowSha1: false, idpCertificates: [] };
    // PUT replaces saml, but the stored metadata document stays with the IdP it describes.
    if (mode === 'replace' && stored.saml?.idpMetadataXml && body.saml.idpEntityId === stored.saml.idpEntityId) base.idpMetadataXml = stored.saml.idpMetadataXml;
    saml = mergeFields(base, body.saml, ['idpMetadataXml']);
  }
  if (saml?.idpCertificates) {
    try {
      saml = { ...saml, idpCertificates: (saml.idpCertificates as string[]).map(normaliseCertificatePem) };
    } catch (err) {
      if (isAppError(err)) throw new AppError(err.code, { message: err.publicMessage, details: [{ path: 'saml.idpCertificates', message: err.publicMessage }] });
      throw err;
    }
  }
  if (typeof saml?.metadataSigningCertificate === 'string') {
    try {
      saml = { ...saml, metadataSigningCertificate: normaliseCertificatePem(saml.metadataSigningCertificate) };
    } catch (err) {
      if (isAppError(err)) throw new AppError(err.code, { message: err.publicMessage, details: [{ path: 'saml.metadataSigningCertificate', message: err.publicMessage }] });
      throw err;
    }
  }
  if (saml?.requireSignedMetadata && !saml.metadataSigningCertificate) problems.push({ path: 'saml.metadataSigningCertificate', message: 'is required when requireSignedMetadata is true' });

  let oauth: Record<string, unknown> | undefined = stored.oauth;
  if (body.oauth) {
    oauth = mergeFields(mode === 'merge' ? { ...stored.oauth } : {}, body.oauth, ['clientSecretSet']);
    oauth.clientSecret ??= stored.oauth?.clientSecret;
    if (!oauth.clientSecret) problems.push({ path: 'oauth.clientSecret', message: 'is required' });
  }

  let candidate = { ...top, ...(saml ? { saml } : {}), ...(oauth ? { oauth } : {}) } as SsoSettings;
  if (!saml) delete candidate.saml;
  if (!oauth) delete candidate.oauth;
  const xml = body.saml?.idpMetadataXml;
  if (xml !== undefined) {
    let metadata;
    try {
      metadata = parseIdpMetadata(xml);
    } catch (err) {
      if (isAppError(err)) throw new AppError(err.code, { message: err.publicMessage, details: [{ path: 'saml.idpMetadataXml', message: err.publicMessage }], detail: err.detail });
      throw err;
    }
    candidate = applyIdpMetadata({ ...candidate, saml: { idpEntityId: metadata.entityId, ...candidate.saml } as SsoSettings['saml'] }, metadata, xml);
    warnings.push(...metadata.warnings);
  } else if (body.saml?.authnRequestBinding !== undefined && candidate.saml?.idpMetadataXml) {
    // S-7a: a changed binding takes its own SSO Location from the stored metadata (IdPs such as
    // Shibboleth list different ones for HTTP-Redirect and HTTP-POST).
    const binding = candidate.saml.authnRequestBinding ?? 'redirect';
    let urls: { redirect?: string; post?: string } = {};
    try {
      urls = parseIdpMetadata(candidate.saml.idpMetadataXml).ssoUrls;
    } catch {
      // stored metadata was valid when stored; if it no longer parses, webLoginUrl stays as set
    }
    if (urls[binding]) candidate = { ...candidate, webLoginUrl: body.webLoginUrl ?? urls[binding] };
    else if (urls.redirect ?? urls.post) warnings.push(`The IdP metadata lists no HTTP-${binding === 'post' ? 'POST' : 'Redirect'} SingleSignOnService; webLoginUrl is used as it is.`);
  }

  const parsed = ssoSettingsSchema.safeParse(candidate);
  if (!parsed.success) {
    problems.push(...parsed.error.issues.filter((i) => !(i.path.join('.') === 'oauth.clientSecret' && problems.some((p) => p.path === 'oauth.clientSecret'))).map((i) => ({ path: i.path.join('.'), message: i.message })));
  }
  const settings = parsed.success ? parsed.data : candidate;
  problems.push(...urlProblems(settings, allowHttp), ...completenessProblems(settings));
  // S-3: accounts change on rename or relocation; external keys do not.
  if (settings.userKey === 'account') warnings.push('userKey "account": accounts can change when a member is renamed or relocated; an external key is safer.');
  return { settings, problems, warnings };
}

export interface CertificateInfo {
  index: number;
  subject: string;
  issuer: string;
  /** SHA-256 fingerprint, colon-separated hex pairs (AA:BB:…). */
  fingerprintSha256: string;
  notBefore: string;
  notAfter: string;
  expired: boolean;
  /** Valid now, but for 30 days or less. */
  expiresSoon: boolean;
}

const distinguishedName = (dn: string): string => dn.split('\n').filter(Boolean).join(', ');

/** The tenant's IdP certificates as the console shows them, judged by the injected clock. */
export function certificateInfo(pems: readonly string[], now: number): CertificateInfo[] {
  const out: CertificateInfo[] = [];
  pems.forEach((pem, index) => {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(pem);
    } catch {
      return; // stored certificates were validated when saved
    }
    const notAfter = Date.parse(cert.validTo);
    const expired = now >= notAfter;
    out.push({
      index,
      subject: distinguishedName(cert.subject),
      issuer: distinguishedName(cert.issuer),
      fingerprintSha256: cert.fingerprint256,
      notBefore: new Date(cert.validFrom).toISOString(),
      notAfter: new Date(notAfter).toISOString(),
      expired,
      expiresSoon: !expired && notAfter - now <= EXPIRES_SOON_MS,
    });
  });
  return out;
}

export function certificateWarnings(certs: CertificateInfo[]): string[] {
  return certs.flatMap((c) =>
    c.expired ? [`IdP certificate ${c.index + 1} (${c.subject}) expired on ${c.notAfter}.`] : c.expiresSoon ? [`IdP certificate ${c.index + 1} (${c.subject}) expires on ${c.notAfter}.`] : [],
  );
}

/**
 * GET …/sso: the settings in the very shape PUT and PATCH accept (no secret: `oauth.clientSecretSet`
 * instead; no stored metadata document), plus the read-only `certificates`, `sp` and `switchInProgress`.
 */
export function ssoView(s: Services, tenant: Tenant, switchInProgress: PendingSwitch | null): Record<string, unknown> {
  const { saml, oauth, ...rest } = tenant.sso;
  const base = s.config.publicUrl;
  const domain = tenant.domain;
  let samlView: Record<string, unknown> | undefined;
  if (saml) {
    const { idpMetadataXml: _xml, ...shown } = saml;
    samlView = shown;
  }
  let oauthView: Record<string, unknown> | undefined;
  if (oauth) {
    const { clientSecret, ...shown } = oauth;
    oauthView = { ...shown, clientSecretSet: Boolean(clientSecret) };
  }
  return {
    ...rest,
    ...(samlView ? { saml: samlView } : {}),
    ...(oauthView ? { oauth: oauthView } : {}),
    certificates: certificateInfo(saml?.idpCertificates ?? [], s.clock.now()),
    sp: {
      entityId: spEntityId(s.sp, tenant),
      acsUrl: acsUrl(s.sp, domain),
      // The SP's single logout endpoints exist only when the gateway can sign (sp-metadata.ts).
      sloUrl: s.sp.signing ? sloUrl(s.sp) : null,
      metadataUrl: `${base}/saml/metadata/${domain}`,
      certificateUrl: s.sp.signing ? `${base}/admin/v1/domains/${domain}/saml/sp-certificate.pem` : null,
      directLoginUrl: `${base}/d/login/${domain}`,
      oauthRedirectUri: `${base}/oauth/callback/${domain}`,
    },
    switchInProgress,
  };
}

/** GET …/sso's body for the tenant now, with the switch in progress if there is one and the metadata refresh's status. */
export async function currentSsoView(s: Services, tenant: Tenant): Promise<Record<string, unknown>> {
  const [pending, refresh] = await Promise.all([s.ssoSwitch.pendingJob(tenant.domain), tenant.sso.saml?.idpMetadataUrl ? s.idpMetadata.status(tenant.domain) : null]);
  return { ...ssoView(s, tenant, pending), idpMetadataRefresh: refreshStatusView(tenant.sso.saml, refresh) };
}

export function ssoAdminRoutes(s: Services): Router {
  const router = Router();
  const allowHttp = s.config.env !== 'production';
  const canDecrypt = Boolean(s.sp.decryption?.length);

  const view = (tenant: Tenant): Promise<Record<string, unknown>> => currentSsoView(s, tenant);

  router.get('/domains/:domain/sso', async (req: Request, res: Response) => {
    res.json(await view(await scopedTenant(s, req, res)));
  });

  // S-21 … S-25: settings, and the side effects of switching, with their counts (PUT replaces, PATCH merges).
  const save = (mode: 'replace' | 'merge') => async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    requirePermission(res, 'write');
    const body = mode === 'replace' ? parseBody(putSchema, req.body) : parseBody(patchSchema, req.body);
    const { settings, problems, warnings } = resolveSettings(tenant.sso, body, mode, allowHttp, canDecrypt);
    if (problems.length) throw new AppError('validation_failed', { details: problems, detail: problems.map((p) => p.path).join(',') });
    // S-9: an allowed unsolicited login needs somewhere to land.
    assertUnsolicitedLanding(settings, s.defaultServiceUrl(tenant));
    // Switching SSO on or off — or finishing a switch that was interrupted — is the super admin's.
    if (settings.enabled !== tenant.sso.enabled || (await s.ssoSwitch.pendingJob(tenant.domain))) requirePermission(res, 'super');

    const result = await s.ssoSwitch.apply(tenant, settings);
    // A new or removed metadata URL: its refresh schedule starts over (a new URL is fetched at the next check).
    if (settings.saml?.idpMetadataUrl !== tenant.sso.saml?.idpMetadataUrl) await s.idpMetadata.forget(tenant.domain);
    await auditAdmin(s, req, res, {
      type: result.switched ? (settings.enabled ? 'sso.enabled' : 'sso.disabled') : 'sso.updated',
      domain: tenant.domain,
      data: { type: settings.type, userKey: settings.userKey, ...(mode === 'merge' ? { fields: Object.keys(body).join(',') } : {}), ...(result.switched ? result.effects : {}) },
    });
    const sso = await view(result.tenant);
    warnings.push(...certificateWarnings(sso.certificates as CertificateInfo[]));
    res.json({ effects: result.effects, switched: result.switched, sso, warnings });
  };
  router.put('/domains/:domain/sso', save('replace'));
  router.patch('/domains/:domain/sso', save('merge'));

  // The SP certificate to give the IdP (it verifies signed AuthnRequests and logout messages with it).
  router.get('/domains/:domain/saml/sp-certificate.pem', async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    const certificate = s.sp.signing?.certificate;
    if (!certificate) throw new AppError('not_found', { message: 'This gateway has no SP signing certificate.', detail: 'saml.signing not configured' });
    res.attachment(`${tenant.domain}-sp-certificate.pem`).type('application/x-pem-file').send(certificate.endsWith('\n') ? certificate : `${certificate}\n`);
  });

  // S-12: IdP metadata as an XML body, or {"url"} fetched behind the outbound policy (SSRF guard).
  router.post(
    '/domains/:domain/saml/idp-metadata',
    express.text({ type: ['application/xml', 'text/xml', 'application/samlmetadata+xml'], limit: '1mb' }),
    async (req: Request, res: Response) => {
      const tenant = await scopedTenant(s, req, res);
      let xml: string;
      let url: string | undefined;
      if (typeof req.body === 'string') xml = req.body;
      else {
        url = parseBody(z.strictObject({ url: z.string().url() }), req.body).url;
        xml = await fetchMetadata(url, { policy: s.outboundPolicy, allowHttp });
      }
      // From a URL: kept and refreshed on a schedule (signed when the tenant requires it). A document
      // sent as the body replaces any URL: nothing will overwrite it.
      const metadata = url ? readFetchedMetadata(xml, tenant.sso.saml, { sameIdp: false, now: s.clock.now() }) : parseIdpMetadata(xml);
      const sso = applyIdpMetadata({ ...tenant.sso, type: 'saml' }, metadata, xml);
      if (sso.saml) {
        if (url) sso.saml.idpMetadataUrl = url;
        else delete sso.saml.idpMetadataUrl;
      }
      const saved: Tenant = await s.tenants.save({ ...tenant, sso });
      if (url) await s.idpMetadata.imported(tenant.domain);
      else await s.idpMetadata.forget(tenant.domain);
      await auditAdmin(s, req, res, { type: 'idp_metadata.imported', domain: tenant.domain, data: { certificates: metadata.signingCertificates.length, fromUrl: Boolean(url) } });
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

  // Fetch the tenant's metadata URL now (the scheduled refresh, asked for): 409 without a URL.
  router.post('/domains/:domain/sso/saml/idp-metadata/refresh', async (req: Request, res: Response) => {
    const tenant = await scopedTenant(s, req, res);
    requirePermission(res, 'write');
    parseBody(refreshSchema, req.body ?? {});
    const outcome = await s.idpMetadata.refreshNow(tenant, { actor: actorOf(res), requestId: res.locals.requestId, ip: req.ip });
    res.json({ result: outcome.result, added: outcome.added, removed: outcome.removed, sso: await view(outcome.tenant) });
  });

  return router;
}

const refreshSchema = z.strictObject({});

export const ssoBodies = { put: putSchema, patch: patchSchema, testSignIn: testSignInSchema, metadataUrl: z.strictObject({ url: z.string().url() }), refresh: refreshSchema };
