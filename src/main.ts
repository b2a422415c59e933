/**
 * The only file that listens or exits. It reads the environment only through loadConfig
 * (src/config/load.ts, the only code in src/ that reads process.env).
 *
 * With `workers` > 1 (default "auto": one per CPU) this process is a node:cluster primary: it applies the
 * seed once, forks the workers, restarts one that dies (with back-off), answers the workers' metrics
 * questions, and on SIGTERM passes the signal on and exits when every worker has drained. Each worker —
 * or this process itself when `workers` is 1 — builds the dependencies, starts the HTTP server (the
 * workers share the port) and drains it on SIGTERM. Several workers need a shared store: with the
 * in-process store the gateway runs as one process and says why.
 */
import { WorkerHeartbeat } from './admin/health.js';
import cluster, { type Worker } from 'node:cluster';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { availableParallelism, hostname } from 'node:os';
import { createApp, type DemoOptions } from './app.js';
import { ConfigError, loadConfig, type Config, type LoadedConfig } from './config/index.js';
import { systemClock } from './domain/clock.js';
import { MemberRepository } from './domain/members.js';
import { SecretBox } from './domain/secret-box.js';
import { TenantRepository } from './domain/tenants.js';
import { createLogger, type Logger } from './observability/logger.js';
import { servePrimaryMetrics, serveWorkerMetrics } from './observability/metrics.js';
import type { Services } from './services.js';
import { applySeed, readSeed } from './seed.js';
import { buildRedisStoreOptions, configureLockInstance, createStoreFromConfig, releaseLocksOfPreviousBoots, type KeyValueStore } from './store/index.js';

/** How long a stopping process waits for queued back-channel logout deliveries (then drops them). */
const BACKCHANNEL_DRAIN_MS = 3000;
const SHUTDOWN_GRACE_MS = 10_000;
/** A worker that dies is replaced after 0.5 s, doubling while they keep dying young, up to 30 s. */
const RESTART_DELAY_MS = { first: 500, max: 30_000 };
/** A worker that lived this long before dying starts the back-off over. */
const STABLE_AFTER_MS = 60_000;

/** WORKERS (a number or "auto"), merged over the config files like every other variable. */
function loadConfigOrExit(): LoadedConfig {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`idp-bridge: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

/** How many HTTP processes to run; `warning` says why it is fewer than configured. */
function resolveWorkerCount(config: Pick<Config, 'workers' | 'store'>, cpus = availableParallelism()): { count: number; warning?: string } {
  const asked = config.workers === 'auto' ? cpus : config.workers;
  if (asked > 1 && buildRedisStoreOptions(config.store) === null) {
    return {
      count: 1,
      warning:
        `workers is ${config.workers === 'auto' ? `"auto" (${asked} CPUs)` : asked}, but the in-process store (no REDIS_URL) cannot be shared ` +
        'between processes: a login started on one worker would be unknown to the next. Running ONE process; set REDIS_URL to use several.',
    };
  }
  return { count: asked };
}

/**
 * This process's stable identity (config.instanceId, INSTANCE_ID): the host name unless set. A cluster
 * worker gets `<base>.w<slot>` from the primary (through INSTANCE_ID in its environment), the same
 * for the worker that replaces it in that slot.
 */
function baseInstanceId(config: Pick<Config, 'instanceId'>): string {
  return config.instanceId?.slice(0, 120) ?? (hostname().replace(/[^A-Za-z0-9_.:-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 110) || 'gateway');
}

async function main(): Promise<void> {
  // A worker answers the primary's metrics collection from its first moment (empty until its app
  // exists): the primary asks every connected worker, and one that never answered would fail every scrape.
  if (cluster.isWorker) serveWorkerMetrics();
  const { config, warnings } = loadConfigOrExit();
  if (cluster.isWorker) {
    // The primary has logged the configuration warnings once; every line of a worker names it.
    await runGateway(config, createLogger({ level: config.logLevel }).child({ worker: cluster.worker!.id }), { seed: false });
    return;
  }
  const logger = createLogger({ level: config.logLevel });
  for (const w of warnings) logger.warn(`WARNING: ${w}`);
  const { count, warning } = resolveWorkerCount(config);
  if (warning) logger.warn(`WARNING: ${warning}`);
  if (count === 1) {
    await runGateway(config, logger, { seed: true });
    return;
  }
  await seedSharedStore(config, logger);
  runPrimary(logger, count, baseInstanceId(config));
}

function demoOptions(config: Config, seed: ReturnType<typeof readSeed> | undefined): DemoOptions | undefined {
  if (!config.demo.enabled || config.env === 'production') return undefined;
  return {
    samlIdp: {
      privateKey: readFileSync('config/dev-only/demo-saml-idp.key.pem', 'utf8'),
      certificate: readFileSync('config/dev-only/demo-saml-idp.crt.pem', 'utf8'),
      users: seed?.demoIdp?.users ?? [],
    },
    oauthIdp: seed?.demoIdp?.oauthClient ? { users: seed.demoIdp.users, client: seed.demoIdp.oauthClient } : undefined,
  };
}

/** Cluster primary: the seed goes into the shared store once, before any worker starts. */
async function seedSharedStore(config: Config, logger: Logger): Promise<void> {
  if (!config.seedFile) return;
  const seed = readSeed(config.seedFile, config.publicUrl);
  const store = await createStoreFromConfig(config, logger);
  try {
    await applySeed(seed, { tenants: new TenantRepository(store, new SecretBox(config.secretKeys)), members: new MemberRepository(store) }, config);
    logger.info({ tenants: seed.tenants.map((t) => t.domain) }, 'seed applied');
  } finally {
    await store.close();
  }
}

/**
 * One gateway process: the app on the configured port, drained on SIGTERM / SIGINT (and, in a worker,
 * when the primary goes away). Signals are handled from the start, so a stop during start-up exits
 * cleanly too.
 */
async function runGateway(config: Config, logger: Logger, options: { seed: boolean }): Promise<void> {
  /** What exists so far: a stop during start-up closes only that. */
  const running: { store?: KeyValueStore; services?: Services; server?: Server; heartbeat?: WorkerHeartbeat } = {};
  let stopping = false;
  const shutdown = (reason: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ reason }, 'draining in-flight requests');
    const force = setTimeout(() => {
      logger.warn('drain timed out; exiting');
      process.exit(1);
    }, SHUTDOWN_GRACE_MS);
    force.unref();
    const finish = (): void => {
      // Back-channel logout tokens already queued get a short while to leave (they need the store and the outbound client).
      void Promise.allSettled([running.heartbeat?.stop(), running.services?.idpMetadata.stop(), running.services?.backchannelLogout.drain(BACKCHANNEL_DRAIN_MS), running.services?.webhooks.stop()])
        .then(() => Promise.allSettled([running.store?.close(), running.services?.outbound.close()]))
        .finally(() => {
          logger.info('stopped');
          process.exit(0);
        });
    };
    if (running.server) {
      running.server.close(finish);
      running.server.closeIdleConnections();
    } else {
      finish();
    }
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  if (cluster.isWorker) process.on('disconnect', () => shutdown('the cluster primary went away'));
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled rejection'));

  const store = (running.store = await createStoreFromConfig(config, logger));
  // Locks a crashed previous boot of this instance held are released before serving (the next identical request resumes at once).
  const instanceId = baseInstanceId(config);
  configureLockInstance(instanceId);
  try {
    const { released } = await releaseLocksOfPreviousBoots(store);
    if (released.length) logger.warn({ instanceId, locks: released }, 'released the locks a previous run of this instance held when it stopped');
  } catch (err) {
    logger.warn({ err, instanceId }, 'could not release the locks of a previous run of this instance (they run out with their lease)');
  }
  const seed = config.seedFile ? readSeed(config.seedFile, config.publicUrl) : undefined;
  const demo = demoOptions(config, seed);
  const { app, services } = createApp({ config, store, logger, clock: systemClock }, demo);
  running.services = services;
  if (seed && options.seed) {
    await applySeed(seed, services, config);
    logger.info({ tenants: seed.tenants.map((t) => t.domain) }, 'seed applied');
  }
  if (stopping) return;
  const server = (running.server = createServer(app));
  server.headersTimeout = 20_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
  server.listen(config.port, () => {
    logger.info({ port: config.port, publicUrl: config.publicUrl, store: store.kind, pid: process.pid, instanceId }, 'idp-bridge listening');
    // Health at a glance counts the processes serving by their heartbeats in the store.
    running.heartbeat = new WorkerHeartbeat({ store, clock: systemClock });
    running.heartbeat.start((err) => logger.warn({ err }, 'worker heartbeat not written'));
    // Events out: every worker delivers the tenants' webhooks in the background (one per tenant at a time, by lease).
    services.webhooks.start();
    // Every process looks for tenants whose IdP metadata is due; one fetches each due time.
    services.idpMetadata.start((err) => logger.warn({ err }, 'IdP metadata refresh pass failed'));
    if (demo && (cluster.worker?.id ?? 1) === 1) logger.info(`Demo: open ${config.publicUrl}/d/login/demo.example?accessUrl=${encodeURIComponent(`${config.publicUrl}/welcome`)}`);
  });
}

/**
 * Cluster primary: keeps `count` workers, replaces one that dies (0.5 s, 1 s, 2 s … up to 30 s while
 * they keep dying young), and on SIGTERM / SIGINT passes SIGTERM to every worker and exits when all
 * are gone — 0 when every one drained cleanly.
 */
function runPrimary(logger: Logger, count: number, instanceId: string): void {
  servePrimaryMetrics();
  const live = new Map<Worker, { startedAt: number; slot: number }>();
  const restarts = new Set<NodeJS.Timeout>();
  let youngDeaths = 0;
  let stopping = false;
  let allClean = true;

  /** A worker's slot (its index in the first fork loop) is its stable identity: a replacement takes the same one. */
  const fork = (slot: number): void => {
    live.set(cluster.fork({ INSTANCE_ID: `${instanceId}.w${slot}` }), { startedAt: Date.now(), slot });
  };

  cluster.on('exit', (worker, code, signal) => {
    const { startedAt, slot } = live.get(worker) ?? { startedAt: Date.now(), slot: 0 };
    live.delete(worker);
    if (stopping) {
      if (code !== 0) allClean = false;
      logger.info({ worker: worker.id, pid: worker.process.pid, exitCode: code, signal }, 'worker stopped');
      if (live.size === 0) {
        logger.info('all workers stopped');
        process.exit(allClean ? 0 : 1);
      }
      return;
    }
    youngDeaths = Date.now() - startedAt < STABLE_AFTER_MS ? youngDeaths + 1 : 1;
    const delay = Math.min(RESTART_DELAY_MS.first * 2 ** (youngDeaths - 1), RESTART_DELAY_MS.max);
    logger.error({ worker: worker.id, pid: worker.process.pid, exitCode: code, signal, restartInMs: delay }, 'worker died unexpectedly; starting a new one');
    const timer = setTimeout(() => {
      restarts.delete(timer);
      if (!stopping) fork(slot);
    }, delay);
    restarts.add(timer);
  });

  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    for (const t of restarts) clearTimeout(t);
    logger.info({ signal, workers: live.size }, 'stopping the workers');
    if (live.size === 0) process.exit(0);
    for (const worker of live.keys()) worker.process.kill('SIGTERM');
    const force = setTimeout(() => {
      logger.warn({ workers: live.size }, 'workers did not stop in time; killing them');
      for (const worker of live.keys()) worker.process.kill('SIGKILL');
      process.exit(1);
    }, SHUTDOWN_GRACE_MS + 2_000);
    force.unref();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled rejection'));

  for (let i = 0; i < count; i++) fork(i);
  logger.info({ workers: count, pid: process.pid }, 'idp-bridge primary started');
}

main().catch((err: unknown) => {
  process.stderr.write(`idp-bridge: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
