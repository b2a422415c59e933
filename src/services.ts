import { createPrivateKey } from 'node:crypto';
import type Provider from 'oidc-provider';
import { mobileSessionEnder } from './provider/mobile-token-guard.js';
import { OpRevocation } from './provider/op-revocation.js';
import { BackchannelLogout } from './provider/backchannel-logout.js';
import { endWebSessionOnRpLogout } from './provider/rp-logout.js';
import { OpClients } from './provider/op-clients.js';
import { createProvider } from './provider/provider.js';
import { AdminKeys } from './admin/api-keys.js';
import { expiringCertificateCounts } from './admin/health.js';
import { IdpMetadataRefresher } from './admin/idp-metadata-refresh.js';
import { ConsoleSessions } from './admin/console-sessions.js';
import { MemberDirectory } from './admin/member-directory.js';
import { MemberSearch } from './admin/member-search.js';
import { SsoSwitch } from './admin/sso-switch.js';
import { TestSignIns } from './admin/test-sign-ins.js';
import type { Config } from './config/index.js';
import type { Clock } from './domain/clock.js';
import { MemberRepository } from './domain/members.js';
import { SecretBox } from './domain/secret-box.js';
import { TenantRepository } from './domain/tenants.js';
import type { Tenant } from './domain/tenant.js';
import type { AccessUrlPolicy } from './domain/access-url.js';
import { DeviceSessions } from './mdm/device-sessions.js';
import { MdmCheck } from './mdm/mdm-check.js';
import { MdmKeys } from './mdm/mdm-keys.js';
import { AuditLog } from './observability/audit.js';
import { EventLog } from './observability/events.js';
import { Webhooks } from './observability/webhooks.js';
import { LoginActivity } from './observability/login-activity.js';
import { Metrics } from './observability/metrics.js';
import type { Logger } from './observability/logger.js';
import { AppLoginChecks } from './sso/app-login-checks.js';
import { OAuthLogin } from './sso/oauth/oauth-login.js';
import { OutboundHttp } from './sso/oauth/outbound-http.js';
import { OutboundPolicy, type HostResolver } from './sso/oauth/outbound-policy.js';
import { SamlAcs } from './sso/saml/acs.js';
import { SamlLogout } from './sso/saml/slo.js';
import type { SecondGateOptionsHook, SpContext, SpDecryptionKey } from './sso/saml/options.js';
import { WebSessions } from './sso/sessions.js';
import { LoginTransactions } from './sso/transactions.js';
import { keys, type KeyValueStore } from './store/index.js';
import { ScimGroups } from './scim/scim-groups.js';
import { ScimTokens } from './scim/scim-tokens.js';
import { ScimUsers } from './scim/scim-users.js';

/** Where the tenant's login returns an administrator signing in to the console (an allowed accessUrl, exactly). */
export function consoleCompleteUrl(publicUrl: string): string {
  return `${publicUrl}/console/auth/complete`;
}

/** What the composition root hands to createApp(). Tests build these with a real Redis and a fake clock. */
export interface AppDeps {
  config: Config;
  store: KeyValueStore;
  logger: Logger;
  clock: Clock;
  /** DNS for outbound calls (default: the system resolver); tests inject one to play DNS rebinding. */
  resolveHost?: HostResolver;
  /** Tests only: adjusts the ACS second gate's node-saml options (passport-seam.ts), to make the two gates disagree. */
  samlSecondGateOptions?: SecondGateOptionsHook;
}

/** Every long-lived object of the gateway, built once from the deps. */
export interface Services extends AppDeps {
  tenants: TenantRepository;
  members: MemberRepository;
  transactions: LoginTransactions;
  sessions: WebSessions;
  audit: AuditLog;
  /** Sign-in counters per tenant and day (the console's activity chart). */
  loginActivity: LoginActivity;
  /** Each tenant's events (sign-ins and audit entries) for the pull API and the webhooks. */
  events: EventLog;
  /** Each tenant's signed webhook and its background delivery (started by main.ts). */
  webhooks: Webhooks;
  acs: SamlAcs;
  /** Where server-side calls may go (IdP metadata by URL, every OAuth / OIDC call). */
  outboundPolicy: OutboundPolicy;
  outbound: OutboundHttp;
  oauthLogin: OAuthLogin;
  appLoginChecks: AppLoginChecks;
  samlLogout: SamlLogout;
  adminKeys: AdminKeys;
  consoleSessions: ConsoleSessions;
  memberDirectory: MemberDirectory;
  ssoSwitch: SsoSwitch;
  /** Administrators' test sign-ins of a tenant's configured IdP (docs/spec.md §11). */
  testSignIns: TestSignIns;
  mdmKeys: MdmKeys;
  mdmCheck: MdmCheck;
  deviceSessions: DeviceSessions;
  metrics: Metrics;
  provider: Provider;
  /** The OP's service clients: the config file's and those added through the admin API. */
  opClients: OpClients;
  opRevocation: OpRevocation;
  /** OpenID Connect Back-Channel Logout deliveries to the OP's service clients (fed by opRevocation). */
  backchannelLogout: BackchannelLogout;
  sp: SpContext;
  accessUrlPolicy(tenant: Tenant): AccessUrlPolicy;
  /** The tenant's default service URL, else the gateway's; none when neither is set (S-5, S-9). */
  defaultServiceUrl(tenant: Tenant): string | undefined;
  /** Scheduled refresh of tenants' IdP metadata URLs; main.ts starts and stops its timer. */
  idpMetadata: IdpMetadataRefresher;
  // g-scim
  /** SCIM 2.0 provisioning (docs/spec.md §14): per-domain tokens, Users over the members, Groups. */
  scimTokens: ScimTokens;
  scimUsers: ScimUsers;
  scimGroups: ScimGroups;
}

/** The configured SP decryption keys (saml.decryption), current first; undefined when none. */
function spDecryptionKeys(config: Config): SpDecryptionKey[] | undefined {
  const d = config.saml.decryption;
  const keys: SpDecryptionKey[] = [];
  if (d.privateKey && d.certificate) keys.push({ id: 'current', key: createPrivateKey(d.privateKey), privateKey: d.privateKey, certificate: d.certificate });
  if (d.nextPrivateKey && d.nextCertificate) keys.push({ id: 'next', key: createPrivateKey(d.nextPrivateKey), privateKey: d.nextPrivateKey, certificate: d.nextCertificate });
  return keys.length ? keys : undefined;
}

export function buildServices(deps: AppDeps): Services {
  const { config, store, clock, logger } = deps;
  const secretBox = new SecretBox(config.secretKeys);
  const tenants = new TenantRepository(store, secretBox);
  const members = new MemberRepository(store);
  const { privateKey, certificate, nextCertificate } = config.saml.signing;
  const sp: SpContext = {
    publicUrl: config.publicUrl,
    spEntityId: config.saml.spEntityId,
    signing: privateKey && certificate ? { privateKey, key: createPrivateKey(privateKey), certificate, nextCertificate } : undefined,
    decryption: spDecryptionKeys(config),
  };
  const sessions = new WebSessions(store, clock);
  // Process metrics (GC, event loop, memory) only where a scraper reads them; tests build many apps per process.
  const metrics = new Metrics({ defaultMetrics: config.env !== 'test' });
  const appLoginChecks = new AppLoginChecks(store, clock, config.loginTransaction.ttlSeconds * 1000);
  const transactions = new LoginTransactions(store, clock, config.loginTransaction.ttlSeconds, metrics, appLoginChecks);
  const isGrantLive = async (grantId: string): Promise<boolean> => (await store.get(keys.opModel('Grant', grantId))) !== null;
  const mdmKeys = new MdmKeys({ store, clock, secrets: secretBox, secretKeys: config.secretKeys, isGrantLive });
  const deviceSessions = new DeviceSessions({ store, isLive: isGrantLive });
  const opClients = new OpClients({ store, clock, secrets: secretBox, config });
  const audit = new AuditLog(store, clock, logger, config.audit.retentionDays);
  const events = new EventLog(store, clock, logger, config.audit.retentionDays);
  audit.forwardTo((entry) => events.audit(entry));
  const defaultServiceUrl = (tenant: Tenant): string | undefined => tenant.defaultServiceUrl ?? config.defaultServiceUrl;
  const allowHttp = config.env !== 'production';
  const outboundPolicy = new OutboundPolicy(config.outbound, deps.resolveHost);
  const outbound = new OutboundHttp({ ...config.oauth, allowHttp, policy: outboundPolicy });
  const provider = createProvider({ config, store, members, logger, clients: opClients });
  // Logout tokens go through the outbound client: its timeouts and the outbound policy (§12).
  const backchannelLogout = new BackchannelLogout({ provider, fetch: outbound.fetch, metrics, logger });
  const opRevocation = new OpRevocation(store, backchannelLogout);
  const services: Services = {
    ...deps,
    tenants,
    members,
    transactions,
    sessions,
    audit,
    loginActivity: new LoginActivity(store, clock, logger),
    events,
    webhooks: new Webhooks({ store, clock, logger, events, secrets: secretBox, policy: outboundPolicy, outbound, allowHttp, settings: config.events.webhook }),
    sp,
    acs: new SamlAcs({
      tenants,
      members,
      transactions,
      store,
      clock,
      sp,
      clockSkewMs: config.saml.clockSkewSeconds * 1000,
      maxAssertionAgeMs: config.saml.maxAssertionAgeSeconds * 1000,
      maxResponseBytes: config.saml.maxResponseBytes,
      replayWindowMs: config.saml.replayWindowSeconds * 1000,
      defaultServiceUrl,
    }),
    outboundPolicy,
    outbound,
    oauthLogin: new OAuthLogin({ http: outbound, transactions, members, clock, clockSkewMs: config.saml.clockSkewSeconds * 1000, publicUrl: config.publicUrl, allowHttp }),
    appLoginChecks,
    adminKeys: new AdminKeys(store, clock, config.adminApiKey),
    consoleSessions: new ConsoleSessions(store, clock, { idleMs: config.console.idleTimeoutSeconds * 1000, absoluteMs: config.console.absoluteTimeoutSeconds * 1000 }),
    memberDirectory: new MemberDirectory(members, sessions, store, clock, opRevocation),
    ssoSwitch: new SsoSwitch({ store, tenants, clock, sessionEnders: [sessions, opRevocation], tokenRevokers: [opRevocation] }),
    testSignIns: new TestSignIns(store, clock),
    provider,
    opClients,
    opRevocation,
    backchannelLogout,
    mdmKeys,
    mdmCheck: new MdmCheck({ store, clock, tenants, mdmKeys, deviceSessions, audit, metrics }),
    deviceSessions,
    metrics,
    samlLogout: new SamlLogout({ tenants, members, sessions, store, clock, sp, clockSkewMs: config.saml.clockSkewSeconds * 1000 }),
    accessUrlPolicy: (tenant) => ({
      allowedOrigins: [...config.serviceOrigins, ...tenant.serviceOrigins],
      allowHttp: config.publicUrl.startsWith('http://'),
      defaultServiceUrl: defaultServiceUrl(tenant),
      internalPrefixes: [`${config.publicUrl}/oidc/interaction/`],
      // The console signs administrators in through the tenant's own login, which returns here.
      internalPages: [consoleCompleteUrl(config.publicUrl)],
    }),
    defaultServiceUrl,
    idpMetadata: new IdpMetadataRefresher({ store, clock, tenants, audit, metrics, logger, policy: outboundPolicy, allowHttp, settings: config.saml.metadataRefresh }),
    scimTokens: new ScimTokens(store, clock),
    // SCIM deactivation and deletion end sessions as the SSO switch does: web sessions, then OP sessions, grants and tokens.
    scimUsers: new ScimUsers({ store, members, memberSearch: new MemberSearch(store), sessionEnders: [sessions, opRevocation], clock, publicUrl: config.publicUrl }),
    scimGroups: new ScimGroups({ store, clock, publicUrl: config.publicUrl }),
  };
  // Read at most once a minute (by the injected clock): every worker answers each scrape.
  let expiring: { at: number; counts: Promise<Map<string, number>> } | null = null;
  metrics.readExpiringCertificatesFrom(() => {
    const now = clock.now();
    if (!expiring || now < expiring.at || now - expiring.at >= 60_000) {
      const counts = expiringCertificateCounts({ store, clock, tenants });
      expiring = { at: now, counts };
      counts.catch(() => (expiring = null));
    }
    return expiring.counts;
  });
  // M-4 / M-12: key changes end the mobile grants they no longer admit.
  mdmKeys.registerSessionEnder(mobileSessionEnder(services, opRevocation));
  // S-19: a service's RP-initiated logout, once confirmed, ends the gateway's web session in that browser too.
  endWebSessionOnRpLogout(services, provider);
  return services;
}
