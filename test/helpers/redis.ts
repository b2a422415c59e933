import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { Cluster, Redis } from 'ioredis';
import { RedisStore } from '../../src/store/index.js';

/**
 * Tests use a real Redis: REDIS_URL, else 127.0.0.1:6379, else a `redis-server` from PATH started on a
 * free port for this process. If none can be had, the suite fails with one line saying how to get one.
 */
let urlPromise: Promise<string> | undefined;

async function reachable(url: string): Promise<boolean> {
  const client = new Redis(url, { lazyConnect: true, connectTimeout: 500, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
    return true;
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/** Starts a throw-away redis-server on a loopback port (a free one unless given); resolves when it answers. */
export async function startRedisServer(options: { port?: number; extraArgs?: string[] } = {}): Promise<{ url: string; port: number; stop: () => void }> {
  if (spawnSync('redis-server', ['--version']).error) {
    throw new Error('No Redis for the tests: set REDIS_URL, run Redis on 127.0.0.1:6379, or install redis-server (apt-get install redis-server).');
  }
  const port = options.port ?? (await freePort());
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...(options.extraArgs ?? [])], {
    stdio: 'ignore',
  });
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if (await reachable(url)) {
      return { url, port, stop: () => child.kill('SIGKILL') };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`redis-server on port ${port} did not start`);
}

export function redisUrl(): Promise<string> {
  urlPromise ??= (async () => {
    if (process.env.REDIS_URL) return process.env.REDIS_URL;
    if (await reachable('redis://127.0.0.1:6379')) return 'redis://127.0.0.1:6379';
    const server = await startRedisServer();
    process.on('exit', server.stop);
    return server.url;
  })();
  return urlPromise;
}

/** A Redis store under a fresh key prefix; `cleanup()` deletes every key it wrote and closes it. */
export async function createTestRedisStore(): Promise<{ store: RedisStore; prefix: string; cleanup: () => Promise<void> }> {
  const url = await redisUrl();
  const prefix = `test:${randomBytes(6).toString('hex')}:`;
  const store = new RedisStore({ url, keyPrefix: prefix, commandTimeoutMs: 2000 });
  await store.connect();
  const cleanup = async (): Promise<void> => {
    const raw = new Redis(url);
    try {
      let cursor = '0';
      do {
        const [next, batch] = await raw.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
        cursor = next;
        if (batch.length) await raw.del(...batch);
      } while (cursor !== '0');
    } finally {
      raw.disconnect();
      await store.close();
    }
  };
  return { store, prefix, cleanup };
}

/** Every key of the store matching `pattern` (after its key prefix), full names, on each master of a Cluster. */
export async function scanKeys(store: RedisStore, pattern: string): Promise<string[]> {
  const nodes = store.client instanceof Cluster ? store.client.nodes('master') : [store.client];
  const found: string[] = [];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', `${store.keyPrefix}${pattern}`, 'COUNT', 1000);
      cursor = next;
      found.push(...batch);
    } while (cursor !== '0');
  }
  return found;
}
