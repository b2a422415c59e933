import { Redis, type RedisOptions } from 'ioredis';
import { StoreUnavailableError } from '../errors/index.js';
import type { RedisNodeAddress } from './redis-store.js';

/** Redis Cluster's hash slots. */
const SLOT_COUNT = 16384;

/** One slot range of CLUSTER SLOTS: [start, end, [masterHost, masterPort, …], …replicas]. */
type SlotsReply = Array<[number, number, [string, number, ...unknown[]], ...unknown[]]>;

const addressKey = (node: RedisNodeAddress): string => `${node.host}:${node.port}`;

/**
 * Whether a Redis Cluster can serve every key, asked of the servers themselves (one node answering
 * PING says nothing: with one master of three down, the others answer PONG and keep `cluster_state:ok`
 * until the node timeout passes, while every key of the lost slots fails):
 *   1. the slot map (CLUSTER SLOTS) from the first node that answers, which must cover all 16,384 slots;
 *   2. CLUSTER INFO on every master that owns slots, each answering within the timeout and saying
 *      `cluster_state:ok`.
 * Its own short connections, one per node, opened again on the next check when a node was lost, so a
 * master that comes back is seen on the first check after it does (no reconnect backoff to wait out).
 */
export class ClusterReadiness {
  private readonly connections = new Map<string, Redis>();
  /** Where to ask for the slot map: the seed nodes, then every master seen in a map. */
  private readonly known: RedisNodeAddress[];

  constructor(
    seeds: RedisNodeAddress[],
    private readonly options: { timeoutMs: number; redisOptions: RedisOptions },
  ) {
    this.known = [...seeds];
  }

  private connection(node: RedisNodeAddress): Redis {
    const key = addressKey(node);
    const existing = this.connections.get(key);
    if (existing && (existing.status === 'ready' || existing.status === 'connecting' || existing.status === 'connect')) return existing;
    existing?.disconnect();
    const client = new Redis({
      ...this.options.redisOptions,
      ...node,
      lazyConnect: true,
      enableOfflineQueue: true,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      enableAutoPipelining: false,
      connectTimeout: this.options.timeoutMs,
      commandTimeout: this.options.timeoutMs,
      // Not reconnecting by itself: the next check opens a fresh connection.
      retryStrategy: () => null,
    });
    client.on('error', () => undefined);
    client.connect().catch(() => undefined);
    this.connections.set(key, client);
    return client;
  }

  private async ask(node: RedisNodeAddress, ...args: string[]): Promise<unknown> {
    return this.connection(node).call('CLUSTER', ...args);
  }

  private async slotMap(): Promise<SlotsReply> {
    let last: unknown = new Error('no cluster node known');
    for (const node of this.known) {
      try {
        return (await this.ask(node, 'SLOTS')) as SlotsReply;
      } catch (err) {
        last = err;
      }
    }
    throw new StoreUnavailableError(new Error(`no cluster node gave its slot map (${last instanceof Error ? last.message : String(last)})`));
  }

  /** Resolves when the cluster can serve every slot; throws StoreUnavailableError saying why not. */
  async check(): Promise<void> {
    const slots = await this.slotMap();
    let covered = 0;
    const masters = new Map<string, RedisNodeAddress>();
    for (const [start, end, master] of slots) {
      covered += end - start + 1;
      const node = { host: String(master[0]), port: Number(master[1]) };
      masters.set(addressKey(node), node);
    }
    for (const [key, node] of masters) if (!this.known.some((k) => addressKey(k) === key)) this.known.push(node);
    if (covered < SLOT_COUNT) throw new StoreUnavailableError(new Error(`cluster slots covered: ${covered} of ${SLOT_COUNT}`));
    const answers = await Promise.allSettled([...masters.values()].map(async (node) => [addressKey(node), String(await this.ask(node, 'INFO'))] as const));
    const problems: string[] = [];
    answers.forEach((a, i) => {
      const key = [...masters.keys()][i]!;
      if (a.status === 'rejected') problems.push(`${key}: ${a.reason instanceof Error ? a.reason.message : String(a.reason)}`);
      else if (!/^cluster_state:ok\b/m.test(a.value[1])) problems.push(`${key}: cluster_state is not ok`);
    });
    if (problems.length) throw new StoreUnavailableError(new Error(`cluster cannot serve every slot: ${problems.join('; ')}`));
  }

  close(): void {
    for (const client of this.connections.values()) client.disconnect();
    this.connections.clear();
  }
}
