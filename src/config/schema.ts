import { z } from 'zod';
import { originSchema } from '../domain/tenant.js';
import { parseAllowedHost } from '../sso/oauth/outbound-policy.js';

/** A Redis node as "host:port" (host name, IPv4, or [IPv6]); parsed into {host, port}. */
const redisNodeSchema = z.string().transform((value, ctx) => {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._-]+)):(\d{1,5})$/.exec(value.trim());
  const port = Number(m?.[3]);
  if (!m || port < 1 || port > 65535) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not host:port (e.g. 10.0.0.5:6379 or [::1]:6379)` });
    return z.NEVER;
  }
  return { host: (m[1] ?? m[2])!, port };
});

interface StoreTargetInput {
  redisUrl?: string;
  redisSentinels?: unknown[];
  redisSentinelName?: string;
  redisSentinelPassword?: string;
  redisClusterNodes?: unknown[];
  redisUsername?: string;
  redisPassword?: string;
  redisTls: boolean;
}

/** One Redis target at most, with the settings that belong to it and no others. */
function checkStoreTarget(store: StoreTargetInput, ctx: z.RefinementCtx): void {
  const issue = (path: string, message: string): void => ctx.addIssue({ code: 'custom', path: [path], message });
  const targets = [
    store.redisUrl !== undefined && 'redisUrl (REDIS_URL)',
    store.redisSentinels !== undefined && 'redisSentinels (REDIS_SENTINELS)',
    store.redisClusterNodes !== undefined && 'redisClusterNodes (REDIS_CLUSTER_NODES)',
  ].filter(Boolean);
  if (targets.length > 1) ctx.addIssue({ code: 'custom', message: `set only one of ${targets.join(', ')}` });
  if (store.redisSentinels && !store.redisSentinelName) issue('redisSentinelName', 'required with redisSentinels: the master name the sentinels monitor (REDIS_SENTINEL_NAME)');
  if (!store.redisSentinels) {
    if (store.redisSentinelName !== undefined) issue('redisSentinelName', 'only with redisSentinels (REDIS_SENTINELS)');
    if (store.redisSentinelPassword !== undefined) issue('redisSentinelPassword', 'only with redisSentinels (REDIS_SENTINELS)');
  }
  if (!store.redisSentinels && !store.redisClusterNodes) {
    const where = store.redisUrl !== undefined ? 'with redisUrl, put them in the URL (redis://user:password@host:port; rediss:// for TLS)' : 'only with redisSentinels or redisClusterNodes';
    if (store.redisUsername !== undefined) issue('redisUsername', where);
    if (store.redisPassword !== undefined) issue('redisPassword', where);
    if (store.redisTls) issue('redisTls', where);
  }
}

/**
 * The gateway's configuration. This file is the documentation of every key (see also
 * docs/configuration.md); defaults live here and in config/default.json, nowhere else.
 */
export const configSchema = z.strictObject({
  /** `production` refuses dev placeholders and never mounts the demo IdPs. From NODE_ENV. */
  env: z.enum(['development', 'test', 'production']).default('development'),
  /** TCP port to listen on. Env: PORT. */
  port: z.coerce.number().int().min(0).max(65535).default(3000),
  /** The public base URL of the gateway (scheme://host[:port], no trailing slash). Env: PUBLIC_URL. */
  publicUrl: originSchema.default('http://localhost:3000'),
  /**
   * Trust X-Forwarded-* from this many proxy hops (Express `trust proxy`): the client IP of audit
   * entries and of every per-client rate limit is the address that many hops from the right of
   * X-Forwarded-For. Set the number of proxies in front of the gateway; `true` (trust every hop) takes
   * the left-most address, which the client writes itself when a proxy appends to the header, so the
   * loader warns at boot. Env: TRUST_PROXY.
   */
  trustProxy: z.union([z.boolean(), z.number().int().min(0)]).default(false),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /**
   * HTTP worker processes (node:cluster): "auto" = one per CPU (os.availableParallelism()); 1 = no
   * cluster, the gateway serves from the one process. Several need a shared store (Redis): with the
   * in-process store the gateway runs one process and logs why. Env: WORKERS.
   */
  workers: z.union([z.literal('auto'), z.number().int().min(1).max(256)], { error: 'a whole number from 1 to 256, or "auto"' }).default('auto'),
  /**
   * Where state lives (docs/redis.md): at most one of redisUrl (one server), redisSentinels (a master
   * found through Sentinel) and redisClusterNodes (Redis Cluster); none = the in-process store
   * (demo/dev only).
   */
  store: z
    .strictObject({
      /** One Redis server (or a proxy in front of Redis): redis://… or rediss://…. Env: REDIS_URL. */
      redisUrl: z.string().url().optional(),
      /** Redis Sentinel: the sentinels, "host:port" each; needs redisSentinelName. Env: REDIS_SENTINELS (comma-separated). */
      redisSentinels: z.array(redisNodeSchema).min(1).optional(),
      /** The master's name as the sentinels monitor it (`sentinel monitor <name> …`). Env: REDIS_SENTINEL_NAME. */
      redisSentinelName: z.string().min(1).optional(),
      /** Password of the sentinels themselves, when they require one. Env: REDIS_SENTINEL_PASSWORD. */
      redisSentinelPassword: z.string().min(1).optional(),
      /** Redis Cluster: seed nodes, "host:port" each (the rest is discovered). Env: REDIS_CLUSTER_NODES (comma-separated). */
      redisClusterNodes: z.array(redisNodeSchema).min(1).optional(),
      /** ACL user and password of the Sentinel or Cluster nodes (a REDIS_URL carries its own). Env: REDIS_USERNAME, REDIS_PASSWORD. */
      redisUsername: z.string().min(1).optional(),
      redisPassword: z.string().min(1).optional(),
      /** TLS to the Sentinel or Cluster nodes and the sentinels (for one server use rediss://). Env: REDIS_TLS. */
      redisTls: z.boolean().default(false),
      /** Prefix for every key (lets several deployments or test runs share one Redis). No braces: keys' own hash tags pick their Cluster slot. */
      keyPrefix: z.string().regex(/^[A-Za-z0-9:_-]*$/).default(''),
      /** A command that takes longer fails with 503 store_unavailable instead of hanging. */
      commandTimeoutMs: z.number().int().min(50).max(60_000).default(2000),
    })
    .superRefine(checkStoreTarget),
  /** Secrets for encrypting stored secrets (first one encrypts; all decrypt). Env: SECRET_KEYS (comma-separated). */
  secretKeys: z.array(z.string().min(32, 'each secret key must be at least 32 characters')).min(1),
  /** Operator key of the admin API (docs/spec.md §11): it may do everything. Env: ADMIN_API_KEY ("" = none, tenant keys only). */
  adminApiKey: z.string().min(32).optional(),
  /** Prometheus metrics at GET /metrics (docs/spec.md §12). */
  metrics: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** When set, scrapers must send `Authorization: Bearer <token>`. Env: METRICS_TOKEN. */
      bearerToken: z.string().min(16).optional(),
    })
    .default({ enabled: true }),
  /** S-5: origins every tenant may use as accessUrl. Env: SERVICE_ORIGINS (comma-separated). */
  serviceOrigins: z.array(originSchema).default([]),
  /**
   * S-5, S-9: where a login without accessUrl, and an allowed IdP-initiated login, lands (a tenant may set
   * its own). Env: DEFAULT_SERVICE_URL. Unset, such logins are refused; the demo sets `<publicUrl>/welcome`.
   */
  defaultServiceUrl: z.string().url().optional(),
  saml: z.strictObject({
    /** SP entity ID sent as Issuer and expected as Audience; a tenant may override it. */
    spEntityId: z.string().min(1).optional(),
    /** S-8: tolerated clock difference for NotBefore / NotOnOrAfter. */
    clockSkewSeconds: z.number().int().min(0).max(600).default(180),
    /**
     * An assertion is accepted at most this long after its IssueInstant (plus the skew), whatever its
     * Conditions allow: a browser posts it within seconds of issue, and an old assertion is a replay risk.
     */
    maxAssertionAgeSeconds: z.number().int().min(30).max(86_400).default(300),
    /**
     * The ACS accepts a response only when the strict verifier and, after it, passport-saml's
     * MultiSamlStrategy (node-saml) both accept it and agree on NameID, assertion ID and Issuer. Off
     * only where node-saml's cost per login (see `npm run bench`) is judged too high.
     */
    secondGate: z.boolean().default(true),
    /** Largest accepted ACS form body (the base64 SAMLResponse is inside). */
    maxResponseBytes: z.number().int().min(4096).max(5_000_000).default(262_144),
    /** How long a seen assertion ID is remembered when the assertion gives no NotOnOrAfter. */
    replayWindowSeconds: z.number().int().min(60).max(7 * 86_400).default(86_400),
    /**
     * The SP's signing key: signs AuthnRequests, LogoutRequests and LogoutResponses (RSA-SHA256) and is
     * published in SP metadata. `nextCertFile` is published beside it ahead of a rollover. Files are
     * PEM; the loader reads them into `privateKey` / `certificate` / `nextCertificate`.
     * Without a key, requests go unsigned and single logout is off.
     */
    signing: z
      .strictObject({
        keyFile: z.string().optional(),
        certFile: z.string().optional(),
        nextCertFile: z.string().optional(),
        privateKey: z.string().optional(),
        certificate: z.string().optional(),
        nextCertificate: z.string().optional(),
      })
      .default({}),
    // b-saml-enc
    /**
     * The SP's decryption keys for encrypted assertions (RSA, PEM): the certificate is published in SP
     * metadata as KeyDescriptor use="encryption" and IdPs encrypt the assertion's key to it. `nextKeyFile`
     * / `nextCertFile` is a second pair for rollover: both keys decrypt while both are set, and both
     * certificates are published. Without a key, an EncryptedAssertion is refused. The loader reads the
     * files into `privateKey` / `certificate` / `nextPrivateKey` / `nextCertificate`; a key must match its
     * certificate. Env: SP_DECRYPTION_KEY_FILE, SP_DECRYPTION_CERT_FILE, SP_DECRYPTION_NEXT_KEY_FILE,
     * SP_DECRYPTION_NEXT_CERT_FILE.
     */
    decryption: z
      .strictObject({
        keyFile: z.string().optional(),
        certFile: z.string().optional(),
        nextKeyFile: z.string().optional(),
        nextCertFile: z.string().optional(),
        privateKey: z.string().optional(),
        certificate: z.string().optional(),
        nextPrivateKey: z.string().optional(),
        nextCertificate: z.string().optional(),
      })
      .default({}),
    // c-saml-meta
    /**
     * Scheduled refresh of the tenants' IdP metadata URLs (src/admin/idp-metadata-refresh.ts): every
     * `intervalMinutes` ± `jitterPercent`, after a failure again in `backoffFirstSeconds`, doubling up to
     * `backoffMaxSeconds`. Every gateway process looks for due tenants every `checkEverySeconds`; one
     * process fetches each due time (a claim in the store).
     */
    metadataRefresh: z
      .strictObject({
        enabled: z.boolean().default(true),
        intervalMinutes: z.number().int().min(5).max(10_080).default(360),
        jitterPercent: z.number().min(0).max(50).default(10),
        backoffFirstSeconds: z.number().int().min(10).max(86_400).default(300),
        backoffMaxSeconds: z.number().int().min(60).max(604_800).default(21_600),
        checkEverySeconds: z.number().int().min(1).max(3600).default(60),
      })
      .prefault({}),
  }),
  oauth: z.strictObject({
    /** S-15: calls to the IdP's token and user-info APIs give up connecting after 1 s … */
    connectTimeoutMs: z.number().int().min(100).max(30_000).default(1000),
    /** … and reading after 3 s. */
    readTimeoutMs: z.number().int().min(100).max(60_000).default(3000),
    /** Largest IdP answer read (token, user info, discovery, JWKS). */
    maxResponseBytes: z.number().int().min(1024).max(10_000_000).default(1_000_000),
  }),
  oidc: z
    .strictObject({
      /** RSA private key (PEM) the OP signs ID tokens with; all gateway processes must share it. */
      signingKeyFile: z.string().optional(),
      signingKey: z.string().optional(),
      /** OP clients (O-1): confidential web services with exact redirect URIs, and the public mobile app. */
      clients: z
        .array(
          z.strictObject({
            client_id: z.string().min(1).max(200),
            client_secret: z.string().min(16).optional(),
            redirect_uris: z.array(z.string().min(1)).min(1),
            post_logout_redirect_uris: z.array(z.string().url()).optional(),
            grant_types: z.array(z.enum(['authorization_code', 'refresh_token'])).default(['authorization_code', 'refresh_token']),
            token_endpoint_auth_method: z.enum(['client_secret_basic', 'client_secret_post', 'none']).optional(),
            application_type: z.enum(['web', 'native']).optional(),
            // e-logout: OpenID Connect Back-Channel Logout 1.0 (S-19): where logout tokens are POSTed, and whether they must carry `sid`.
            backchannel_logout_uri: z.string().url().optional(),
            backchannel_logout_session_required: z.boolean().optional(),
          }),
        )
        .default([]),
    })
    .default({ clients: [] }),
  /**
   * Where the gateway's server-side calls may go: IdP metadata by URL (S-12), the works token and
   * user-info APIs (S-15), OIDC discovery, token and JWKS (S-16). Tenant administrators choose these
   * URLs, so by default only public addresses are called: loopback, private (RFC 1918, ULA), link-local,
   * CGNAT, unspecified, multicast, broadcast, reserved, the IPv6 forms embedding such IPv4 addresses,
   * cloud metadata endpoints and names that do not resolve are refused, before any connection and again
   * on the address each connection dials (src/sso/oauth/outbound-policy.ts).
   */
  outbound: z
    .strictObject({
      /**
       * Admit every non-public address (not cloud metadata endpoints). For closed networks and tests:
       * any tenant administrator can then make the gateway call any internal host. Env:
       * OUTBOUND_ALLOW_PRIVATE_NETWORKS.
       */
      allowPrivateNetworks: z.boolean().default(false),
      /**
       * Hosts admitted although not public, e.g. an on-premises IdP: `idp.corp.example` (any port) or
       * `idp.corp.example:8443` (a host name admits whatever it resolves to), `10.0.0.5`, `10.0.0.5:8443`,
       * `[fd00::5]:8443`, or a CIDR such as `10.20.0.0/16`. A cloud metadata address (169.254.169.254 …)
       * is admitted only by an entry naming exactly that address. Env: OUTBOUND_ALLOWED_HOSTS
       * (comma-separated). Outside production with the demo on, the gateway's own host:port is added
       * (the demo OAuth IdP is served by the gateway itself).
       */
      allowedHosts: z
        .array(
          z.string().superRefine((value, ctx) => {
            const parsed = parseAllowedHost(value);
            if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', message: parsed });
          }),
        )
        .default([]),
    })
    .default({ allowPrivateNetworks: false, allowedHosts: [] }),
  admin: z
    .strictObject({
      /** Admin API requests per minute per key. */
      rateLimitPerMinute: z.number().int().min(10).max(100_000).default(1200),
    })
    .default({ rateLimitPerMinute: 1200 }),
  /** The tenants' audit trails (docs/spec.md §11). */
  audit: z
    .strictObject({
      /** Days an audit event is kept (each trail is trimmed as it is written). Env: AUDIT_RETENTION_DAYS. */
      retentionDays: z.number().int().min(1).max(3650).default(90),
    })
    .default({ retentionDays: 90 }),
  /**
   * Per-client limits on the public login and logout routes, which anyone can call without a session
   * (docs/spec.md §12): requests per minute per client IP — an IPv6 client by its /64 — as Express sees it
   * behind `trustProxy`. Counted in the store, so every gateway process counts together; minutes are
   * cut by the gateway's clock. Over a limit: 429 `rate_limited` with Retry-After. Behind a NAT or an
   * egress proxy that many users share, raise them for that address's traffic.
   */
  rateLimits: z
    .strictObject({
      /**
       * GET /d/login/{domain} (and the OP's login interaction), across tenants. Each stores a login
       * transaction (≤ 4 KB) for loginTransaction.ttlSeconds, so this bounds what one client can make
       * the store hold: limit × 30 minutes × 4 KB.
       */
      loginStartPerMinute: z.number().int().min(1).max(10_000_000).default(600),
      /** POST /acs/{domain}: SAML responses (each costs an XML signature check; the form is parsed after the limit). */
      acsPerMinute: z.number().int().min(1).max(10_000_000).default(600),
      /** GET /oauth/callback/{domain}: OAuth / OIDC answers (each may call the IdP's token and user-info APIs). */
      oauthCallbackPerMinute: z.number().int().min(1).max(10_000_000).default(600),
      /** GET|POST /saml2/sp/slo and /saml2/sp/slo/callback together: SAML logout messages. */
      samlLogoutPerMinute: z.number().int().min(1).max(10_000_000).default(300),
      /** GET /d/logout and /view/oauth/sso/logout together: sign-outs. */
      logoutPerMinute: z.number().int().min(1).max(10_000_000).default(300),
      /**
       * GET|POST /oidc/auth: authorization requests to the OpenID Provider. Each makes oidc-provider
       * store an interaction for its lifetime, so this bounds what one client can make the store hold
       * there, as loginStartPerMinute does for login transactions.
       */
      opAuthorizePerMinute: z.number().int().min(1).max(10_000_000).default(600),
    })
    .default({ loginStartPerMinute: 600, acsPerMinute: 600, oauthCallbackPerMinute: 600, samlLogoutPerMinute: 300, logoutPerMinute: 300, opAuthorizePerMinute: 600 }),
  session: z.strictObject({
    cookieName: z.string().regex(/^[A-Za-z0-9_-]+$/).default('idpb_session'),
    /** S-10 defaults: 24 h for web logins, 30 days for app logins. */
    webTtlSeconds: z.number().int().min(60).default(86_400),
    appTtlSeconds: z.number().int().min(60).default(2_592_000),
  }),
  /**
   * Console sessions (`/console`, docs/spec.md §11): an administrator signed in as themselves. The session
   * ends after `idleTimeoutSeconds` without a request (each request slides it) and, whatever the use,
   * `absoluteTimeoutSeconds` after sign-in; then the administrator signs in again through the tenant's login.
   */
  console: z
    .strictObject({
      idleTimeoutSeconds: z.number().int().min(60).max(86_400).default(1800),
      absoluteTimeoutSeconds: z.number().int().min(300).max(7 * 86_400).default(28_800),
    })
    .refine((c) => c.idleTimeoutSeconds <= c.absoluteTimeoutSeconds, { message: 'idleTimeoutSeconds must not exceed absoluteTimeoutSeconds', path: ['idleTimeoutSeconds'] })
    .default({ idleTimeoutSeconds: 1800, absoluteTimeoutSeconds: 28_800 }),
  loginTransaction: z.strictObject({
    /** Login transactions expire after 30 minutes (public docs). */
    ttlSeconds: z.number().int().min(60).max(3600).default(1800),
  }),
  demo: z.strictObject({
    /** Mount the demo SAML IdP at /demo-idp (never in production). */
    enabled: z.boolean().default(true),
  }),
  /** JSON file with tenants and members loaded at start (relative to the working directory). */
  seedFile: z.string().optional(),
  // f-check-oauth
  mdm: z
    .strictObject({
      /**
       * The Managed App Configuration key name the app reads the tenant's MDM key from (M-3), as the
       * admin API and the console show it: configurable per deployment (the app build decides it).
       */
      managedAppConfigKey: z
        .string()
        .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'a managed app configuration key name: 1–128 letters, digits, `_`, `.` or `-`, starting with a letter or digit')
        .default('LineworksAuthCode'),
    })
    .default({ managedAppConfigKey: 'LineworksAuthCode' }),
  // j-events
  /** Events out (docs/spec.md §11): the per-tenant webhooks' delivery, run in the background by every worker. */
  events: z
    .strictObject({
      webhook: z
        .strictObject({
          /** How often a worker looks for events to deliver. */
          pollMs: z.number().int().min(50).max(60_000).default(1000),
          /** Events per POST, oldest first. */
          batchSize: z.number().int().min(1).max(500).default(100),
          /** Attempts of one batch before it is recorded as failed (then the next batch goes). */
          maxAttempts: z.number().int().min(1).max(30).default(12),
          /** Wait after the first failed attempt; doubled after each further one, up to backoffMaxMs (defaults: 1 s … 5 min, about 25 min in all). */
          backoffBaseMs: z.number().int().min(1).max(600_000).default(1000),
          backoffMaxMs: z.number().int().min(1).max(3_600_000).default(300_000),
          /** How long one worker holds a tenant's delivery (renewed per batch); after a crash another worker goes on after it. */
          leaseMs: z.number().int().min(1000).max(600_000).default(30_000),
        })
        .default({ pollMs: 1000, batchSize: 100, maxAttempts: 12, backoffBaseMs: 1000, backoffMaxMs: 300_000, leaseMs: 30_000 }),
    })
    .default({ webhook: { pollMs: 1000, batchSize: 100, maxAttempts: 12, backoffBaseMs: 1000, backoffMaxMs: 300_000, leaseMs: 30_000 } }),
  // g-scim
  /** SCIM 2.0 provisioning (`/scim/v2/{domain}`, docs/spec.md §14). */
  scim: z
    .strictObject({
      /** SCIM requests per minute per SCIM token (Entra ID sends about 10 at a time; a first sync of 100,000 users needs thousands a minute). */
      rateLimitPerMinute: z.number().int().min(10).max(1_000_000).default(6000),
    })
    .default({ rateLimitPerMinute: 6000 }),
  // o-lock-release
  /**
   * This gateway's stable identity, the same after a restart (default: the host name; a cluster worker
   * adds `.w<slot>`). At boot a process releases the locks a crashed previous boot of the same identity
   * held (README Operations). Two processes running at once must never share it. Env: INSTANCE_ID.
   */
  instanceId: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/, 'an instance id: 1–128 letters, digits, `_`, `.`, `:` or `-`, starting with a letter or digit')
    .optional(),
});

export type Config = z.infer<typeof configSchema>;
/** What the loader accepts before defaults are applied. */
export type ConfigInput = z.input<typeof configSchema>;
