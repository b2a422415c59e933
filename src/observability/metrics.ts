import cluster from 'node:cluster';
import { randomUUID } from 'node:crypto';
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** How a login ended, for `idpb_logins_total`. */
export type LoginResult = 'success' | 'failure' | 'locked';
export type LoginType = 'saml' | 'oauth' | 'password';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * The Prometheus metrics of one gateway process (docs/spec.md §12), on a registry of its own so that several
 * apps in one process (tests) never collide. Labels never carry secrets or member ids: only tenant
 * domains, route templates, result codes.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly logins: Counter<'domain' | 'type' | 'result'>;
  readonly httpDuration: Histogram<'method' | 'route' | 'status_class'>;
  readonly acsDuration: Histogram<'result'>;
  readonly samlSecondGate: Counter<'result'>;
  readonly tokenDuration: Histogram<'grant_type' | 'mdm' | 'result'>;
  readonly mdmChecks: Counter<'domain' | 'result'>;
  readonly storeErrors: Counter<'source'>;
  readonly rateLimited: Counter<'bucket'>;
  readonly loginTransactions: Counter<'type'>;
  // c-saml-meta
  readonly idpCertificatesExpiring: Gauge<'domain'>;
  readonly idpMetadataRefreshes: Counter<'result'>;
  /** Where idpCertificatesExpiring reads its values at each scrape (set by the composition root). */
  private expiringCertificates?: () => Promise<Map<string, number>>;
  // e-logout
  readonly backchannelLogout: Counter<'result'>;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.logins = new Counter({ name: 'idpb_logins_total', help: 'Logins by tenant, type (saml, oauth, password) and result (success, failure, locked).', labelNames: ['domain', 'type', 'result'], registers });
    this.httpDuration = new Histogram({ name: 'idpb_http_request_duration_seconds', help: 'HTTP request latency by route template.', labelNames: ['method', 'route', 'status_class'], buckets: LATENCY_BUCKETS, registers });
    this.samlSecondGate = new Counter({ name: 'idpb_saml_second_gate_total', help: 'SAML responses the strict verifier accepted, then checked by passport-saml (node-saml): agreed or refused.', labelNames: ['result'], registers });
    this.acsDuration = new Histogram({ name: 'idpb_acs_duration_seconds', help: 'SAML ACS (POST /acs/{domain}) latency by result (success: a session was created).', labelNames: ['result'], buckets: LATENCY_BUCKETS, registers });
    this.tokenDuration = new Histogram({ name: 'idpb_oidc_token_duration_seconds', help: 'OpenID Provider token endpoint latency (mobile refresh included) by grant type, whether the MDM check ran, and result.', labelNames: ['grant_type', 'mdm', 'result'], buckets: LATENCY_BUCKETS, registers });
    this.mdmChecks = new Counter({ name: 'idpb_mdm_checks_total', help: 'MDM checks of mobile requests by tenant and result (ok or the refusal code).', labelNames: ['domain', 'result'], registers });
    this.storeErrors = new Counter({ name: 'idpb_store_errors_total', help: 'Requests answered 503 store_unavailable, and failed readiness probes.', labelNames: ['source'], registers });
    this.rateLimited = new Counter({ name: 'idpb_rate_limited_total', help: 'Requests refused 429 rate_limited, by limiter bucket (route family: login-start, acs, oauth-callback, saml-logout, logout, session-check, password-login …). Never by client.', labelNames: ['bucket'], registers });
    this.loginTransactions = new Counter({ name: 'idpb_login_transactions_total', help: 'Login transactions stored (one per login started at an IdP) by SSO type (saml, oauth).', labelNames: ['type'], registers });
    // c-saml-meta
    this.idpCertificatesExpiring = new Gauge({
      name: 'idpb_idp_certificates_expiring',
      help: 'IdP signing certificates of a tenant that end within 30 days (expired ones included), by tenant domain. Tenants with none are not listed.',
      labelNames: ['domain'],
      // Every worker reads the same store: the cluster's value is any worker's, not their sum.
      aggregator: 'max',
      registers,
      collect: async () => {
        if (!this.expiringCertificates) return;
        let counts: Map<string, number>;
        try {
          counts = await this.expiringCertificates();
        } catch {
          return; // the store is unreachable: the last values stay, the scrape still answers
        }
        this.idpCertificatesExpiring.reset();
        for (const [domain, n] of counts) this.idpCertificatesExpiring.set({ domain }, n);
      },
    });
    this.idpMetadataRefreshes = new Counter({ name: 'idpb_idp_metadata_refreshes_total', help: 'Fetches of tenants\' IdP metadata URLs (scheduled or asked for) by result: unchanged, updated (certificates or endpoints changed), failed.', labelNames: ['result'], registers });
    // e-logout
    this.backchannelLogout = new Counter({ name: 'idpb_backchannel_logout_total', help: 'OpenID Connect back-channel logout deliveries to service clients by result (delivered, retried: an attempt failed and another follows, failed: every attempt failed or no token could be made, dropped: the queue was full).', labelNames: ['result'], registers });
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'idpb_' });
    // In a node:cluster worker, the primary collects this registry over IPC (see servePrimaryMetrics).
    if (cluster.isWorker) {
      serveWorkerMetrics();
      AggregatorRegistry.setRegistries([this.registry]);
    }
  }

  /** c-saml-meta: the source of idpb_idp_certificates_expiring (read at each scrape). */
  readExpiringCertificatesFrom(source: () => Promise<Map<string, number>>): void {
    this.expiringCertificates = source;
  }

  recordLogin(domain: string | undefined, type: LoginType, result: LoginResult): void {
    this.logins.inc({ domain: domain ?? 'unknown', type, result });
  }

  /** The exposition text: this process's registry, or, in a cluster worker, every worker's summed by the primary. */
  async text(): Promise<{ contentType: string; body: string }> {
    if (cluster.isWorker && process.send) return { contentType: this.registry.contentType, body: await askPrimary() };
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

const REQUEST = 'idpb:metrics:request';
const RESPONSE = 'idpb:metrics:response';
/**
 * How long a worker waits for the primary's answer: longer than prom-client's own 5 s limit on
 * collecting every worker, so a slow worker surfaces as the primary's error rather than a bare timeout.
 */
const CLUSTER_TIMEOUT_MS = 6000;

let workerSideServing = false;

/**
 * Worker side of prom-client's cluster aggregation: it answers the primary's requests for this
 * process's metrics only once an AggregatorRegistry has been constructed in the worker (the constructor
 * installs the IPC listener; `setRegistries` alone does not). Until a Metrics instance names its registry
 * (`setRegistries`), the worker answers with prom-client's empty global registry, so a worker that is
 * still starting never makes a scrape wait. Idempotent; does nothing outside a cluster worker.
 */
export function serveWorkerMetrics(): void {
  if (workerSideServing || !cluster.isWorker) return;
  workerSideServing = true;
  new AggregatorRegistry();
}

interface MetricsMessage {
  type: typeof REQUEST | typeof RESPONSE;
  id: string;
  body?: string;
  error?: string;
}

function isMetricsMessage(m: unknown): m is MetricsMessage {
  return typeof m === 'object' && m !== null && ((m as MetricsMessage).type === REQUEST || (m as MetricsMessage).type === RESPONSE);
}

/** Worker side: asks the primary for the aggregated metrics of all workers. */
function askPrimary(): Promise<string> {
  return new Promise((resolve, reject) => {
    const id = randomUUID();
    const onMessage = (m: unknown): void => {
      if (!isMetricsMessage(m) || m.type !== RESPONSE || m.id !== id) return;
      done();
      if (m.error !== undefined || m.body === undefined) reject(new Error(`cluster metrics: ${m.error ?? 'no body'}`));
      else resolve(m.body);
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error('cluster metrics: the primary did not answer'));
    }, CLUSTER_TIMEOUT_MS);
    const done = (): void => {
      clearTimeout(timer);
      process.off('message', onMessage);
    };
    process.on('message', onMessage);
    process.send!({ type: REQUEST, id } satisfies MetricsMessage);
  });
}

/**
 * Primary side (node:cluster): answers workers' requests with prom-client's aggregation of every
 * worker's registry (counters and histograms summed), so a scrape of any worker sees the whole process group.
 */
export function servePrimaryMetrics(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker, message: unknown) => {
    if (!isMetricsMessage(message) || message.type !== REQUEST) return;
    aggregator.clusterMetrics().then(
      (body) => worker.send({ type: RESPONSE, id: message.id, body } satisfies MetricsMessage),
      (err: unknown) => worker.send({ type: RESPONSE, id: message.id, error: err instanceof Error ? err.message : 'aggregation failed' } satisfies MetricsMessage),
    );
  });
}
