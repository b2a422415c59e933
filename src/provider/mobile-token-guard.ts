import express, { Router, type NextFunction, type Request, type Response } from 'express';
import type Provider from 'oidc-provider';
import { DEVICE_ID_RE, type MdmAdmission, type MdmSessionEnder } from '../mdm/mdm-keys.js';
import type { Services } from '../services.js';
import { keys } from '../store/index.js';
import { fromAccountId } from './account-id.js';
import { withRequestCache } from './store-adapter.js';
import type { OpRevocation } from './op-revocation.js';
import { OP_PATH } from './provider.js';

/** The public clients (no client authentication): the mobile app. */
function publicClientIds(s: Services): Set<string> {
  return new Set(s.config.oidc.clients.filter((c) => c.token_endpoint_auth_method === 'none').map((c) => c.client_id));
}

/**
 * M-5: every mobile token request (authorization-code exchange and refresh) of a member whose tenant
 * has 3rd-party MDM sync must carry X-MDM-Auth-Code (an admitting key) and X-Device-Id. Missing or
 * wrong → OAuth `invalid_grant` with the reason first in error_description, and that device's grant
 * ends. A pass records which key admitted the grant (M-13 live sessions, M-12 revocation).
 * Runs in front of oidc-provider's token endpoint; web clients are not affected.
 */
export function mobileTokenGuard(s: Services, provider: Provider): Router {
  const router = Router();
  const mobileClients = publicClientIds(s);

  // The token request's rows are read once: the guard's reads are served again to oidc-provider.
  router.post(`${OP_PATH}/token`, (_req: Request, _res: Response, next: NextFunction) => withRequestCache(next));
  router.post(`${OP_PATH}/token`, express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 20 }), async (req: Request, res: Response, next: NextFunction) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const grantType = body.grant_type;
    const presented =
      grantType === 'authorization_code' && typeof body.code === 'string'
        ? await provider.AuthorizationCode.find(body.code)
        : grantType === 'refresh_token' && typeof body.refresh_token === 'string'
          ? await provider.RefreshToken.find(body.refresh_token)
          : undefined;
    // Unknown codes/tokens and confidential clients: oidc-provider answers as usual.
    const stopTimer = s.metrics.tokenDuration.startTimer();
    const mdm = presented && mobileClients.has(presented.clientId) ? 'checked' : 'not_checked';
    res.on('finish', () => stopTimer({ grant_type: typeof grantType === 'string' && KNOWN_GRANTS.has(grantType) ? grantType : 'other', mdm, result: res.statusCode < 400 ? 'success' : 'failure' }));
    if (!presented || !mobileClients.has(presented.clientId)) return next();
    const account = fromAccountId(presented.accountId);
    if (!account) return next();
    const tenant = await s.tenants.find(account.domain);
    const group = tenant?.group ?? null;
    const deviceId = req.get('x-device-id') ?? null;
    const result = await s.mdmCheck.check({
      domain: account.domain,
      memberGroup: group,
      presentedCode: req.get('x-mdm-auth-code') ?? null,
      deviceId,
      kind: grantType === 'authorization_code' ? 'login' : 'refresh',
      grantId: presented.grantId,
      clientIp: req.ip,
      requestId: res.locals.requestId,
      actor: `member:${account.memberId}`,
    });
    if (!result.ok) {
      // That device's session ends: its grant (and every token under it) is revoked.
      await endDeviceSession(s, { domain: account.domain, grantId: presented.grantId, deviceId });
      if (result.reason === 'rate_limited' && result.retryAfterSeconds) res.setHeader('Retry-After', String(result.retryAfterSeconds));
      res.status(400).json({ error: 'invalid_grant', error_description: `${result.reason}: ${REFUSAL_HINT[result.reason]}` });
      return;
    }
    if (deviceId !== null && DEVICE_ID_RE.test(deviceId)) {
      const entry = { grantId: presented.grantId, domain: account.domain, group, restrictedBy: result.restrictedBy?.domain ?? null, keyId: result.keyId };
      const known = result.onDevice;
      const unchanged = known !== null && known.domain === entry.domain && known.group === entry.group && known.restrictedBy === entry.restrictedBy && (known.keyId ?? null) === entry.keyId;
      // A refresh of a session recorded as it is: nothing to write (the steady state of a managed device).
      if (!unchanged) {
        if (result.keyId) await s.mdmKeys.recordAdmission(account.domain, result.keyId, { deviceId, grantId: presented.grantId });
        await s.deviceSessions.record(deviceId, entry);
      }
      // M-7 (b): an account of the restricting group logged in; other-group sessions on the device end now.
      for (const other of result.endOnDevice) await endDeviceSession(s, { ...other, deviceId });
      if (result.endOnDevice.length > 0) {
        await s.audit.record({
          type: 'mdm.other_domain_sessions_ended',
          domain: result.restrictedBy!.domain,
          actor: `member:${account.memberId}`,
          requestId: res.locals.requestId,
          ip: req.ip,
          data: { count: result.endOnDevice.length, domains: [...new Set(result.endOnDevice.map((d) => d.domain))].join(' ') },
        });
      }
    }
    next();
  });

  return router;
}

/** Metric labels: a caller-chosen grant_type must not create new series. */
const KNOWN_GRANTS = new Set(['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:device_code']);

const REFUSAL_HINT: Record<string, string> = {
  mdm_code_required: "the mobile app must present this organisation's MDM auth code and a device id",
  mdm_code_mismatch: "the MDM auth code is not this organisation's current one",
  mdm_other_domain_restricted: 'this device is managed by an organisation that allows only its own accounts',
  rate_limited: 'too many failed MDM checks from this device or network; wait and retry',
};

/** Ends one mobile session: the grant and its tokens, its MDM admission and its device entry. */
async function endDeviceSession(s: Services, session: { domain: string; grantId: string; deviceId: string | null }): Promise<void> {
  await s.opRevocation.revokeGrant(session.grantId);
  await s.mdmKeys.forgetAdmission(session.domain, session.grantId);
  if (session.deviceId !== null && DEVICE_ID_RE.test(session.deviceId)) await s.deviceSessions.forget(session.deviceId, session.grantId);
}

/** M-4 / M-12: ends mobile grants when MDM keys change. */
export function mobileSessionEnder(s: Services, revocation: OpRevocation): MdmSessionEnder {
  const mobileClients = publicClientIds(s);
  return {
    async endMobileSessions(_domain: string, admissions: readonly MdmAdmission[]): Promise<number> {
      let ended = 0;
      for (const a of admissions) {
        await revocation.revokeGrant(a.grantId);
        ended++;
      }
      return ended;
    },
    async endMobileSessionsExcept(domain: string, keepKeyIds: readonly string[]): Promise<number> {
      let ended = 0;
      await eachMobileGrantExcept(s, mobileClients, domain, keepKeyIds, async (grantId) => {
        await revocation.revokeGrant(grantId);
        await s.mdmKeys.forgetAdmission(domain, grantId);
        ended++;
      });
      return ended;
    },
    async countMobileSessionsExcept(domain: string, keepKeyIds: readonly string[]): Promise<number> {
      let count = 0;
      await eachMobileGrantExcept(s, mobileClients, domain, keepKeyIds, () => {
        count++;
        return Promise.resolve();
      });
      return count;
    },
  };
}

/** Every live mobile grant of the tenant that none of `keepKeyIds` admitted. */
async function eachMobileGrantExcept(s: Services, mobileClients: Set<string>, domain: string, keepKeyIds: readonly string[], fn: (grantId: string) => Promise<void>): Promise<void> {
  let cursor = '0';
  do {
    const [next, grantIds] = await s.store.sScan(keys.opTenantGrants(domain), cursor, 500);
    for (const grantId of grantIds) {
      const raw = await s.store.get(keys.opModel('Grant', grantId));
      const clientId = raw === null ? null : (JSON.parse(raw) as { clientId?: string }).clientId;
      if (!clientId || !mobileClients.has(clientId)) continue;
      const admittedBy = await s.mdmKeys.admittedKeyOf(domain, grantId);
      if (admittedBy && keepKeyIds.includes(admittedBy)) continue;
      await fn(grantId);
    }
    cursor = next;
  } while (cursor !== '0');
}
