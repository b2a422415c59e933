/**
 * The only file that reads the environment, listens, or exits. Builds the dependencies, seeds the demo
 * tenants, starts the HTTP server and drains it on SIGTERM.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createApp, type DemoOptions } from './app.js';
import { ConfigError, loadConfig, type LoadedConfig } from './config/index.js';
import { systemClock } from './domain/clock.js';
import { createLogger } from './observability/logger.js';
import { applySeed, readSeed } from './seed.js';
import { MemoryStore, RedisStore, type KeyValueStore } from './store/index.js';

const SHUTDOWN_GRACE_MS = 10_000;

async function main(): Promise<void> {
  let loaded: LoadedConfig;
  try {
    loaded = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`idp-bridge: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const { config, warnings } = loaded;
  const logger = createLogger({ level: config.logLevel });
  for (const w of warnings) logger.warn(`WARNING: ${w}`);

  let store: KeyValueStore;
  if (config.store.redisUrl) {
    const redis = new RedisStore({ url: config.store.redisUrl, keyPrefix: config.store.keyPrefix, commandTimeoutMs: config.store.commandTimeoutMs });
    try {
      await redis.connect();
    } catch {
      logger.error('Redis is not reachable yet; retrying in the background (/readyz answers 503 until it is)');
    }
    store = redis;
  } else {
    store = new MemoryStore();
  }

  const seed = config.seedFile ? readSeed(config.seedFile, config.publicUrl) : undefined;

  let demo: DemoOptions | undefined;
  if (config.demo.enabled && config.env !== 'production') {
    demo = {
      samlIdp: {
        privateKey: readFileSync('config/dev-only/demo-saml-idp.key.pem', 'utf8'),
        certificate: readFileSync('config/dev-only/demo-saml-idp.crt.pem', 'utf8'),
        users: seed?.demoIdp?.users ?? [],
      },
      oauthIdp: seed?.demoIdp?.oauthClient ? { users: seed.demoIdp.users, client: seed.demoIdp.oauthClient } : undefined,
    };
  }

  const { app, services } = createApp({ config, store, logger, clock: systemClock }, demo);
  if (seed) {
    await applySeed(seed, services);
    logger.info({ tenants: seed.tenants.map((t) => t.domain) }, 'seed applied');
  }
  const server = createServer(app);
  server.headersTimeout = 20_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
  server.listen(config.port, () => {
    logger.info({ port: config.port, publicUrl: config.publicUrl, store: store.kind }, 'idp-bridge listening');
    if (demo) logger.info(`Demo: open ${config.publicUrl}/d/login/demo.example?accessUrl=${encodeURIComponent(`${config.publicUrl}/welcome`)}`);
  });

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'draining in-flight requests');
    const force = setTimeout(() => {
      logger.warn('drain timed out; exiting');
      process.exit(1);
    }, SHUTDOWN_GRACE_MS);
    force.unref();
    server.close(() => {
      void Promise.allSettled([store.close(), services.outbound.close()]).finally(() => {
        logger.info('stopped');
        process.exit(0);
      });
    });
    server.closeIdleConnections();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled rejection'));
}

main().catch((err: unknown) => {
  process.stderr.write(`idp-bridge: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
