import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Cluster, Redis } from 'ioredis';
import { RedisStore, type RedisNodeAddress } from '../../src/store/index.js';
import { createTestRedisStore, freePort, redisUrl } from './redis.js';

/**
 * Redis Cluster and Sentinel for tests, from `redis-server` and `redis-cli` on PATH: a cluster of three
 * masters (no replicas) on free loopback ports, each node with its own nodes.conf in one temp dir that
 * `stop()` removes. REDIS_CLUSTER_NODES (host:port,…) points the tests at an existing cluster instead.
 */

const execFileAsync = promisify(execFile);
const MISSING = 'No redis-server/redis-cli for the Redis Cluster and Sentinel tests: install them (apt-get install redis-server) or set REDIS_CLUSTER_NODES.';

function assertRedisBinaries(): void {
  for (const bin of ['redis-server', 'redis-cli']) if (spawnSync(bin, ['--version']).error) throw new Error(MISSING);
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A redis-server that does not keep the test process alive (its owner kills it at exit). */
function spawnRedis(args: string[]): ChildProcess {
  const child = spawn('redis-server', args, { stdio: 'ignore' });
  child.unref();
  return child;
}

/** Runs `fn` on a fresh connection to one node, then closes it. */
export async function withNode<T>(node: RedisNodeAddress, fn: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis({ ...node, lazyConnect: true, connectTimeout: 500, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await fn(client);
  } finally {
    client.disconnect();
  }
}

/** Retries `attempt` while it throws or gives undefined (100 tries, 100 ms apart); returns its result. */
export async function eventually<T>(what: string, attempt: () => Promise<T | undefined>): Promise<T> {
  let last: unknown;
  for (let i = 0; i < 100; i++) {
    try {
      const result = await attempt();
      if (result !== undefined) return result;
    } catch (err) {
      last = err;
    }
    await delay(100);
  }
  throw new Error(`${what} did not happen${last instanceof Error ? ` (last error: ${last.message})` : ''}`);
}

/** Asks one node until `check` accepts its answer. */
async function pollNode(node: RedisNodeAddress, ask: (client: Redis) => Promise<unknown>, check: (reply: unknown) => boolean, what: string): Promise<void> {
  await eventually(`${node.host}:${node.port}: ${what}`, async () => (check(await withNode(node, ask)) ? true : undefined));
}

/** Distinct free loopback ports. */
async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

export interface StartedRedisCluster {
  nodes: RedisNodeAddress[];
  /** Kills every node and removes the temp dir. */
  stop: () => void;
  /** Kills every node (SIGKILL), keeping their nodes.conf: the whole cluster is down. */
  kill: () => void;
  /** Starts the killed nodes again on the same ports; they rejoin from nodes.conf, empty (no persistence). */
  restart: () => Promise<void>;
  /** Kills node `i` (SIGKILL) only, keeping its nodes.conf: one master of the cluster is down. */
  killNode: (i: number) => void;
  /** Starts node `i` again on its port (it rejoins from nodes.conf, empty); resolves once every node says cluster_state:ok. */
  restartNode: (i: number) => Promise<void>;
}

const clusterOk = async (nodes: RedisNodeAddress[]): Promise<void> => {
  for (const node of nodes) await pollNode(node, (c) => c.cluster('INFO'), (r) => String(r).includes('cluster_state:ok'), 'cluster_state:ok');
};

/** Starts `masters` cluster-enabled redis-servers, joins them into one cluster and waits for cluster_state:ok. */
export async function startRedisCluster(masters = 3): Promise<StartedRedisCluster> {
  assertRedisBinaries();
  const dir = mkdtempSync(join(tmpdir(), 'idpb-redis-cluster-'));
  let children: Array<ChildProcess | undefined> = [];
  const kill = (): void => {
    for (const child of children) child?.kill('SIGKILL');
    children = [];
  };
  const stop = (): void => {
    kill();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // Client and cluster-bus ports both chosen free (the default bus port, port + 10000, may not be).
    const ports = await freePorts(masters * 2);
    const nodes: RedisNodeAddress[] = [];
    const argsOf: string[][] = [];
    for (let i = 0; i < masters; i++) {
      const port = ports[i]!;
      const args = ['--port', String(port), '--cluster-port', String(ports[masters + i]!), '--bind', '127.0.0.1', '--cluster-enabled', 'yes'];
      args.push('--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '5000', '--dir', dir, '--save', '', '--appendonly', 'no');
      argsOf.push(args);
      nodes.push({ host: '127.0.0.1', port });
    }
    const spawnAll = async (): Promise<void> => {
      children = argsOf.map(spawnRedis);
      for (const node of nodes) await pollNode(node, (c) => c.ping(), (r) => r === 'PONG', 'redis-server start');
    };
    await spawnAll();
    const create = ['--cluster', 'create', ...nodes.map((n) => `${n.host}:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'];
    try {
      await execFileAsync('redis-cli', create, { timeout: 30_000 });
    } catch (err) {
      throw new Error(`redis-cli --cluster create failed: ${(err as { stderr?: string }).stderr || (err as Error).message}`);
    }
    await clusterOk(nodes);
    const restart = async (): Promise<void> => {
      await spawnAll();
      await clusterOk(nodes);
    };
    const killNode = (i: number): void => {
      children[i]?.kill('SIGKILL');
      children[i] = undefined;
    };
    const restartNode = async (i: number): Promise<void> => {
      if (children[i]) throw new Error(`cluster node ${i} is still running`);
      children[i] = spawnRedis(argsOf[i]!);
      await pollNode(nodes[i]!, (c) => c.ping(), (r) => r === 'PONG', 'redis-server start');
      await clusterOk(nodes);
    };
    return { nodes, stop, kill, restart, killNode, restartNode };
  } catch (err) {
    stop();
    throw err;
  }
}

let clusterPromise: Promise<RedisNodeAddress[]> | undefined;

function parseNodes(list: string): RedisNodeAddress[] {
  return list.split(',').map((s) => {
    const i = s.trim().lastIndexOf(':');
    return { host: s.trim().slice(0, i), port: Number(s.trim().slice(i + 1)) };
  });
}

/** This process's test cluster: REDIS_CLUSTER_NODES, else one started on first use and stopped at exit. */
export function redisClusterNodes(): Promise<RedisNodeAddress[]> {
  clusterPromise ??= (async () => {
    if (process.env.REDIS_CLUSTER_NODES) return parseNodes(process.env.REDIS_CLUSTER_NODES);
    const cluster = await startRedisCluster();
    process.on('exit', cluster.stop);
    return cluster.nodes;
  })();
  return clusterPromise;
}

/** Deletes every key under `prefix` on every master (one DEL per key: they live in many slots). */
export async function deleteClusterKeys(nodes: RedisNodeAddress[], prefix: string): Promise<void> {
  const raw = new Cluster(nodes, { lazyConnect: true });
  raw.on('error', () => undefined);
  try {
    await raw.connect();
    for (const master of raw.nodes('master')) {
      let cursor = '0';
      do {
        const [next, batch] = await master.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
        cursor = next;
        await Promise.all(batch.map((key) => master.del(key)));
      } while (cursor !== '0');
    }
  } finally {
    raw.disconnect();
  }
}

export interface TestRedisStore {
  store: RedisStore;
  prefix: string;
  /** Deletes every key the store wrote and closes it. */
  cleanup: () => Promise<void>;
}

/** A store on the test cluster under a fresh key prefix (the Cluster twin of createTestRedisStore). */
export async function createTestRedisClusterStore(): Promise<TestRedisStore> {
  const nodes = await redisClusterNodes();
  const prefix = `test:${randomBytes(6).toString('hex')}:`;
  const store = new RedisStore({ clusterNodes: nodes, keyPrefix: prefix, commandTimeoutMs: 2000 });
  await store.connect();
  const cleanup = async (): Promise<void> => {
    try {
      await deleteClusterKeys(nodes, prefix);
    } finally {
      await store.close();
    }
  };
  return { store, prefix, cleanup };
}

/** A Redis deployment the same scenarios run on. */
export interface RedisDeployment {
  /** For test names. */
  name: string;
  /** A store under a fresh key prefix. */
  createStore: () => Promise<TestRedisStore>;
  /** One more connection on an existing prefix: the store of another gateway process. */
  connectStore: (prefix: string) => Promise<RedisStore>;
}

async function connected(store: RedisStore): Promise<RedisStore> {
  await store.connect();
  return store;
}

export const standaloneRedis: RedisDeployment = {
  name: 'standalone Redis',
  createStore: createTestRedisStore,
  connectStore: async (prefix) => connected(new RedisStore({ url: await redisUrl(), keyPrefix: prefix, commandTimeoutMs: 2000 })),
};

export const redisCluster: RedisDeployment = {
  name: 'Redis Cluster (3 masters)',
  createStore: createTestRedisClusterStore,
  connectStore: async (prefix) => connected(new RedisStore({ clusterNodes: await redisClusterNodes(), keyPrefix: prefix, commandTimeoutMs: 2000 })),
};

/** Every deployment multi-instance scenarios run on. */
export const redisDeployments: readonly RedisDeployment[] = [standaloneRedis, redisCluster];

export interface StartedRedisSentinel {
  sentinels: RedisNodeAddress[];
  /** The master name the sentinel monitors. */
  name: string;
  master: RedisNodeAddress;
  /** The master's replica (an empty list unless asked for). */
  replicas: RedisNodeAddress[];
  stop: () => void;
}

/** The address the sentinels give for the master now. */
export async function sentinelMasterPort(started: StartedRedisSentinel): Promise<number> {
  const reply = await withNode(started.sentinels[0]!, (c) => c.call('SENTINEL', 'get-master-addr-by-name', started.name));
  return Number((reply as [string, string] | null)?.[1]);
}

/** One master (and, if asked, one replica of it) and one sentinel monitoring it (quorum 1), on free loopback ports. */
export async function startRedisSentinel(options: { name?: string; replica?: boolean } = {}): Promise<StartedRedisSentinel> {
  assertRedisBinaries();
  const name = options.name ?? 'idpb-test';
  const dir = mkdtempSync(join(tmpdir(), 'idpb-redis-sentinel-'));
  const children: ChildProcess[] = [];
  const stop = (): void => {
    for (const child of children) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const [masterPort, sentinelPort, replicaPort] = await freePorts(3);
    const master = { host: '127.0.0.1', port: masterPort! };
    const sentinel = { host: '127.0.0.1', port: sentinelPort! };
    const dataNode = (port: number, ...extra: string[]): string[] => ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--dbfilename', `dump-${port}.rdb`, '--save', '', '--appendonly', 'no', ...extra];
    children.push(spawnRedis(dataNode(master.port)));
    await pollNode(master, (c) => c.ping(), (r) => r === 'PONG', 'redis-server start');
    const replicas: RedisNodeAddress[] = [];
    if (options.replica) {
      const replica = { host: '127.0.0.1', port: replicaPort! };
      children.push(spawnRedis(dataNode(replica.port, '--replicaof', master.host, String(master.port))));
      await pollNode(replica, (c) => c.info('replication'), (r) => String(r).includes('master_link_status:up'), 'replica in sync');
      replicas.push(replica);
    }
    // A sentinel rewrites its config file: it must be its own, writable one.
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(conf, [`port ${sentinel.port}`, 'bind 127.0.0.1', `dir ${dir}`, `sentinel monitor ${name} ${master.host} ${master.port} 1`, ''].join('\n'));
    children.push(spawnRedis([conf, '--sentinel']));
    await pollNode(
      sentinel,
      (c) => c.call('SENTINEL', 'get-master-addr-by-name', name),
      (r) => Array.isArray(r) && Number(r[1]) === master.port,
      'sentinel knows the master',
    );
    if (replicas.length) {
      await pollNode(sentinel, (c) => c.call('SENTINEL', 'replicas', name), (r) => Array.isArray(r) && r.length === replicas.length, 'sentinel knows the replica');
    }
    return { sentinels: [sentinel], name, master, replicas, stop };
  } catch (err) {
    stop();
    throw err;
  }
}
