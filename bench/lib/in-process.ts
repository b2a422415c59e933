/**
 * The gateway's own services, built in the bench process from the gateway's config file (same Redis,
 * same key prefix) through its composition root (buildServices), to prepare single-use state fast and
 * exactly as the gateway itself writes it:
 *
 * - login transactions for the ACS pools: `LoginTransactions.create` with a fresh AuthnRequest ID and a
 *   fresh login binding (each login its own browser), what `GET /d/login/{domain}` stores
 *   (src/http/start-login.ts) before it builds the redirect; the pool posts the binding cookie with it;
 * - refresh tokens of the mobile client. They rotate (single use), so every request needs its own. They
 *   are made as oidc-provider's authorization-code grant makes them, through its own models: per token
 *   one OP Session (as after a login), one Grant (openid) and one RefreshToken with the fields the code
 *   exchange gives it (gty authorization_code, scope openid; not bound to the OP browser session, as
 *   the mobile client's tokens are not). The gateway process then refreshes them through its real /oidc/token
 *   endpoint, MDM guard included.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config/index.js';
import { systemClock } from '../../src/domain/clock.js';
import { LOGIN_BINDING_COOKIE } from '../../src/http/cookies.js';
import { createLogger } from '../../src/observability/logger.js';
import { toAccountId } from '../../src/provider/account-id.js';
import { buildServices, type Services } from '../../src/services.js';
import { newBrowserBinding } from '../../src/sso/transactions.js';
import { RedisStore } from '../../src/store/index.js';
import { inParallel, type StartedLogin } from './saml-pool.js';

/** The part of oidc-provider's models this uses (src/types/oidc-provider.d.ts declares less). */
interface OpModels {
  Client: { find(id: string): Promise<unknown> };
  Grant: new (p: { accountId: string; clientId: string }) => { addOIDCScope(s: string): void; save(): Promise<string> };
  Session: new (p: Record<string, unknown>) => { uid: string; save(ttl: number): Promise<string> };
  RefreshToken: new (p: Record<string, unknown>) => { save(): Promise<string> };
}

export const MOBILE_CLIENT_ID = 'mobile';

export class InProcessGateway {
  private constructor(
    private readonly store: RedisStore,
    private readonly services: Services,
    private readonly op: OpModels,
    private readonly client: unknown,
    private readonly sessionTtlS: number,
  ) {}

  /** Builds the gateway's services from its own config file (same Redis, same prefix). */
  static async open(configFile: string, repo: string): Promise<InProcessGateway> {
    const { config } = loadConfig({ env: { NODE_ENV: 'development', IDPB_CONFIG: configFile }, cwd: repo });
    if (!config.store.redisUrl) throw new Error('the bench gateway config has no Redis URL');
    const store = new RedisStore({ url: config.store.redisUrl, keyPrefix: config.store.keyPrefix, commandTimeoutMs: 10_000 });
    await store.connect();
    const logger = createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
    const services = buildServices({ config, store, logger, clock: systemClock });
    const op = services.provider as unknown as OpModels;
    const client = await op.Client.find(MOBILE_CLIENT_ID);
    if (!client) {
      await store.close();
      throw new Error(`the gateway config has no OP client "${MOBILE_CLIENT_ID}"`);
    }
    return new InProcessGateway(store, services, op, client, config.session.webTtlSeconds);
  }

  /** `count` SAML login transactions of `domain` landing on `target` (web logins). */
  async beginLogins(domain: string, target: string, count: number, concurrency = 64): Promise<StartedLogin[]> {
    const tenant = await this.services.tenants.find(domain);
    if (!tenant) throw new Error(`tenant ${domain} is not in the store`);
    return inParallel(count, concurrency, async () => {
      const requestId = `_${randomBytes(20).toString('hex')}`;
      const binding = newBrowserBinding();
      const txn = await this.services.transactions.create(tenant, { ssoType: 'saml', target, clientKind: 'web', requestId }, binding);
      return { relayState: txn.id, requestId, cookie: `${LOGIN_BINDING_COOKIE}=${binding}` };
    });
  }

  /** One device's tokens: session, grant and refresh token; returns the refresh token value. */
  async mintRefreshToken(domain: string, memberId: string, device?: { deviceId: string; mdmKeyId: string }): Promise<string> {
    const accountId = toAccountId(domain, memberId);
    const now = Math.floor(Date.now() / 1000);
    const grant = new this.op.Grant({ accountId, clientId: MOBILE_CLIENT_ID });
    grant.addOIDCScope('openid');
    const grantId = await grant.save();
    const sid = randomBytes(16).toString('base64url');
    const session = new this.op.Session({ accountId, loginTs: now, authorizations: { [MOBILE_CLIENT_ID]: { sid, grantId, persistsLogin: true } } });
    await session.save(this.sessionTtlS);
    const token = new this.op.RefreshToken({
      accountId,
      authTime: now,
      client: this.client,
      // Mobile refresh tokens outlive the OP browser session (S-10; provider.ts expiresWithSession).
      expiresWithSession: false,
      grantId,
      gty: 'authorization_code',
      rotations: 0,
      scope: 'openid',
      sessionUid: session.uid,
      sid,
    });
    const value = await token.save();
    // What the code exchange through the MDM guard records for a managed device (mobile-token-guard.ts).
    if (device) {
      await this.services.mdmKeys.recordAdmission(domain, device.mdmKeyId, { deviceId: device.deviceId, grantId });
      await this.services.deviceSessions.record(device.deviceId, { grantId, domain, group: null, restrictedBy: null, keyId: device.mdmKeyId });
    }
    return value;
  }

  async mintRefreshTokens(domain: string, memberIds: string[], count: number, concurrency = 48): Promise<string[]> {
    return inParallel(count, concurrency, (i) => this.mintRefreshToken(domain, memberIds[i % memberIds.length]!));
  }

  /**
   * Refresh tokens of managed devices, as a login through the MDM guard leaves them: each on its own
   * device, its admission by the MDM key and its device entry recorded.
   */
  async mintManagedRefreshTokens(domain: string, memberIds: string[], count: number, mdmKey: string, devicePrefix: string, concurrency = 48): Promise<Array<{ token: string; deviceId: string }>> {
    const match = await this.services.mdmKeys.match(domain, mdmKey, Date.now());
    if (!match.admitted) throw new Error(`the MDM key does not admit on ${domain}`);
    const keyId = match.keyId;
    return inParallel(count, concurrency, async (i) => {
      const deviceId = `${devicePrefix}-${i}-${randomBytes(4).toString('hex')}`;
      return { token: await this.mintRefreshToken(domain, memberIds[i % memberIds.length]!, { deviceId, mdmKeyId: keyId }), deviceId };
    });
  }

  async close(): Promise<void> {
    await this.services.outbound.close();
    await this.store.close();
  }
}
