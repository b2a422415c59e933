/**
 * Shared by the comparison hosts (hello, node-saml, jackson): listens on BENCH_PORT (127.0.0.1) with
 * BENCH_PROCESSES processes. One process listens itself; more are node:cluster workers behind a primary
 * that only forks (the same shape as a clustered gateway), so a floor runs with exactly the gateway's
 * process count. Workers exit when the primary goes away; the primary takes its workers down on SIGTERM
 * and exits when the bench that started it is gone.
 */
import cluster from 'node:cluster';
import type { Server } from 'node:http';
import express, { type Express } from 'express';

export interface HostOptions {
  /** Runs once in the primary before any worker starts (e.g. creating shared state). */
  setupOnce?: () => Promise<void>;
  /** Builds the app in every serving process. */
  build: () => Promise<Express> | Express;
  /** Called in a serving process on shutdown. */
  close?: () => Promise<void>;
}

export const hostPort = (): number => Number(process.env.BENCH_PORT ?? 0);
export const hostProcesses = (): number => Math.max(1, Number(process.env.BENCH_PROCESSES ?? 1));

/** Every response names the host (BENCH_HOST_ID), so the bench knows it reached this process and not another. */
export const HOST_ID_HEADER = 'x-bench-host';

async function listen(options: HostOptions): Promise<void> {
  const built = await options.build();
  const hostId = process.env.BENCH_HOST_ID ?? '';
  const app = express();
  app.disable('x-powered-by');
  app.use((_req, res, next) => {
    res.setHeader(HOST_ID_HEADER, hostId);
    next();
  });
  app.use(built);
  const server: Server = app.listen(hostPort(), '127.0.0.1');
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const stop = (): void => {
    server.close();
    server.closeAllConnections();
    void (options.close?.() ?? Promise.resolve()).finally(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  // A worker whose primary died must not linger.
  if (cluster.isWorker) process.on('disconnect', () => process.exit(0));
}

/** The bench started this process: if the bench dies without stopping it (SIGKILL), go too. */
function exitWithParent(): void {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.exit(0);
  }, 1_000).unref();
}

export async function serve(options: HostOptions): Promise<void> {
  const processes = hostProcesses();
  if (cluster.isPrimary) exitWithParent();
  if (cluster.isPrimary) await options.setupOnce?.();
  if (processes === 1 || cluster.isWorker) {
    await listen(options);
    return;
  }
  let stopping = false;
  for (let i = 0; i < processes; i++) cluster.fork();
  cluster.on('exit', (worker, code, signal) => {
    if (!stopping) {
      process.stderr.write(`worker ${worker.process.pid} exited (${signal ?? code}); stopping\n`);
      process.exit(1);
    }
  });
  const stop = (): void => {
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.kill('SIGTERM');
    setTimeout(() => process.exit(0), 2_000).unref();
    cluster.on('exit', () => {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
    });
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
