import { Redis } from 'ioredis';

/** The URL without its password, for output. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.href;
  } catch {
    return url;
  }
}

/** Connects once and PINGs; a clear message (and no retry loop) when Redis is not there. */
export async function checkRedis(url: string): Promise<string> {
  const client = new Redis(url, { lazyConnect: true, connectTimeout: 2_000, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
  let cause: Error | null = null;
  client.on('error', (err: Error) => {
    cause ??= err;
  });
  try {
    await client.connect();
    await client.ping();
    const info = await client.info('server');
    return /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
  } catch (err) {
    throw new Error(
      `Redis is not reachable at ${redactUrl(url)} (${(cause ?? (err as Error)).message}).\n` +
        '  The benchmarks need a real Redis: start one (e.g. `apt-get install redis-server && redis-server --daemonize yes`)\n' +
        '  or point REDIS_URL at one (redis://host:port).',
    );
  } finally {
    client.disconnect();
  }
}

/** Calls `each` with every batch of keys under `prefix` (SCAN); returns the sum of what it returns. */
async function scanPrefix(url: string, prefix: string, each: (client: Redis, batch: string[]) => Promise<number>): Promise<number> {
  const client = new Redis(url, { maxRetriesPerRequest: 2, connectTimeout: 2_000 });
  client.on('error', () => undefined);
  let total = 0;
  try {
    let cursor = '0';
    do {
      const [next, batch] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 5000);
      cursor = next;
      if (batch.length) total += await each(client, batch);
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
  return total;
}

/** Deletes every key under `prefix` (SCAN + UNLINK); returns how many. */
export async function deletePrefix(url: string, prefix: string): Promise<number> {
  if (!prefix.startsWith('bench:') || prefix.length < 12) throw new Error(`refusing to delete the unexpected prefix ${prefix}`);
  return scanPrefix(url, prefix, (client, batch) => client.unlink(...batch));
}

/** How many keys are under `prefix`. */
export function countPrefix(url: string, prefix: string): Promise<number> {
  return scanPrefix(url, prefix, (_client, batch) => Promise.resolve(batch.length));
}
