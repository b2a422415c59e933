import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Express } from 'express';
import type { AtomicOp, KeyValueStore } from '../../../src/store/index.js';
import { freePort, startRedisServer } from '../../helpers/redis.js';

/**
 * Helpers of the resilience tests: a redis-server that survives SIGKILL with its data (AOF, fsync on
 * every write, so every acknowledged write is on disk), a store wrapper that kills it at a chosen
 * command, the app on a real port, and requests with a client-side deadline that tells a hang apart
 * from an answer.
 */

/** A redis-server with an append-only file, fsynced on every write: SIGKILL loses nothing it acknowledged. */
export interface DurableRedis {
  url: string;
  port: number;
  /** SIGKILL (no shutdown, no save); resolves once the port refuses connections. */
  kill: () => Promise<void>;
  /** Starts redis-server again on the same port and data directory (replaying the AOF). */
  restart: () => Promise<void>;
  /** Kills it (if running) and removes the data directory. */
  dispose: () => Promise<void>;
}

async function portRefuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

export async function startDurableRedis(): Promise<DurableRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'idpb-redis-'));
  const args = ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir];
  let server = await startRedisServer({ extraArgs: args });
  let running = true;
  const port = server.port;
  const kill = async (): Promise<void> => {
    if (!running) return;
    server.stop();
    running = false;
    for (let i = 0; i < 200 && !(await portRefuses(port)); i++) await sleep(10);
    if (!(await portRefuses(port))) throw new Error(`redis-server on ${port} did not die`);
  };
  return {
    url: server.url,
    port,
    kill,
    restart: async () => {
      if (running) throw new Error('redis-server is still running');
      server = await startRedisServer({ port, extraArgs: args });
      running = true;
    },
    dispose: async () => {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A KeyValueStore that forwards to `inner`, except that it first runs `trip` whenever `shouldTrip` says
 * so for a command about to be sent — a test kills Redis there, so the interruption falls at a known
 * point of a bulk operation (e.g. "before the third batch").
 */
export function trippingStore(inner: KeyValueStore, shouldTrip: (method: string, args: unknown[]) => boolean, trip: (method: string, args: unknown[]) => Promise<void>): KeyValueStore {
  return new Proxy(inner, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      const fn = value as (...a: unknown[]) => Promise<unknown>;
      return async (...args: unknown[]) => {
        if (shouldTrip(String(prop), args)) await trip(String(prop), args);
        return fn.apply(target, args);
      };
    },
  });
}

/** The ops of an `atomic` call, for `trippingStore` predicates. */
export const atomicOps = (method: string, args: unknown[]): AtomicOp[] => (method === 'atomic' ? (args[0] as AtomicOp[]) : []);

export interface Listening {
  base: string;
  close: () => Promise<void>;
}

/** Serves an Express app on a loopback port (real sockets, so a hang shows up as a client timeout). */
export async function listen(app: Express): Promise<Listening> {
  const server: Server = createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    base: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** What one request came to: an answer, no answer within the deadline (a hang), or a broken connection. */
export type Outcome =
  | { kind: 'answer'; status: number; code: string | undefined; location: string | null; setCookie: string[]; contentType: string; text: string }
  | { kind: 'hang' }
  | { kind: 'network_error'; message: string };

/** The public error code of an answer: the HTML page's meta tag, or a JSON body's `error`. */
export function codeOf(text: string, contentType: string): string | undefined {
  const meta = /<meta name="idpb-error-code" content="([^"]+)">/.exec(text)?.[1];
  if (meta) return meta;
  if (contentType.includes('json')) {
    try {
      const body = JSON.parse(text) as { error?: unknown };
      return typeof body.error === 'string' ? body.error : undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** One request with a client-side deadline; redirects are not followed. Never throws. */
export async function request(url: string, init: RequestInit & { deadlineMs: number }): Promise<Outcome> {
  const { deadlineMs, ...rest } = init;
  try {
    const res = await fetch(url, { redirect: 'manual', ...rest, signal: AbortSignal.timeout(deadlineMs) });
    const text = await res.text();
    const contentType = res.headers.get('content-type') ?? '';
    return { kind: 'answer', status: res.status, code: codeOf(text, contentType), location: res.headers.get('location'), setCookie: res.headers.getSetCookie(), contentType, text };
  } catch (err) {
    const e = err as Error;
    if (e.name === 'TimeoutError' || e.name === 'AbortError') return { kind: 'hang' };
    return { kind: 'network_error', message: `${e.name}: ${e.message} ${String((e.cause as Error | undefined)?.message ?? '')}` };
  }
}

/** Polls `probe` every `everyMs` until it returns true, at most `maxTries` times; returns whether it did. */
export async function pollUntil(probe: () => boolean | Promise<boolean>, maxTries: number, everyMs: number): Promise<boolean> {
  for (let i = 0; i < maxTries; i++) {
    if (await probe()) return true;
    await sleep(everyMs);
  }
  return false;
}

/** Records process-level failures (uncaught exceptions, unhandled rejections) while a test runs. */
export function watchProcess(): { failures: string[]; stop: () => void } {
  const failures: string[] = [];
  const onError = (err: unknown): void => {
    failures.push(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
  };
  process.on('uncaughtException', onError);
  process.on('unhandledRejection', onError);
  return {
    failures,
    stop: () => {
      process.off('uncaughtException', onError);
      process.off('unhandledRejection', onError);
    },
  };
}

export interface GatewayProcess {
  child: ChildProcess;
  base: string;
  /** Everything the process wrote so far (stdout and stderr). */
  output: () => string;
}

/**
 * Runs the gateway as `src/main.ts` does in production (its own process, in-process store unless the
 * env says otherwise) on a free port; resolves once it listens. `env` is merged over this process's
 * environment; REDIS_URL, NODE_ENV and PUBLIC_URL are dropped unless given.
 * (test/integration/demo.test.ts starts its process the same way and could share this.)
 */
export async function startGatewayProcess(env: Record<string, string> = {}): Promise<GatewayProcess> {
  const port = await freePort();
  const full: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), LOG_LEVEL: 'info' };
  for (const name of ['REDIS_URL', 'NODE_ENV', 'PUBLIC_URL']) delete full[name];
  // Each test process is its own instance unless the test names one (processes sharing a host name must not share it).
  full.INSTANCE_ID = `test-gw-${port}`;
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { env: { ...full, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  if (!(await pollUntil(() => output.includes('idp-bridge listening') || child.exitCode !== null, 400, 50)) || child.exitCode !== null) {
    child.kill('SIGKILL');
    throw new Error(`the gateway process did not start:\n${output}`);
  }
  return { child, base: `http://127.0.0.1:${port}`, output: () => output };
}
