/**
 * The bench's child processes (gateway, floor and peer hosts, the file benches). Each is started in its
 * own process group, so stopping it also stops its cluster workers; every one still running is killed
 * when the bench exits, however it exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Child {
  name: string;
  pid: number;
  logFile: string;
  /** Resolves with the exit code (or signal) when the process ends. */
  exited: Promise<string>;
  hasExited: () => boolean;
  stop: () => Promise<void>;
  /** The last lines of its log, for error messages. */
  logTail: (lines?: number) => string;
}

const running = new Set<ChildProcess>();

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal); // the group: the process and its cluster workers
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

/** Synchronous last resort (process 'exit'): SIGKILL every child group still running. */
export function killAllChildren(): void {
  for (const child of running) killGroup(child, 'SIGKILL');
  running.clear();
}

export interface StartOptions {
  name: string;
  /** Arguments after `node`. */
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  logFile: string;
}

export function startNode(options: StartOptions): Child {
  const fd = openSync(options.logFile, 'a');
  const child = spawn(process.execPath, options.args, { cwd: options.cwd, env: options.env, stdio: ['ignore', fd, fd], detached: true });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`${options.name} did not start`);
  running.add(child);
  let exitedWith: string | null = null;
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      exitedWith = signal ?? String(code);
      // The group may still hold workers when the primary died on its own.
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* none left */
      }
      resolve(exitedWith);
    });
  });
  const logTail = (lines = 30): string => {
    try {
      return readFileSync(options.logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  };
  return {
    name: options.name,
    pid: child.pid,
    logFile: options.logFile,
    exited,
    hasExited: () => exitedWith !== null,
    logTail,
    stop: async () => {
      if (exitedWith !== null) return;
      killGroup(child, 'SIGTERM');
      const done = await Promise.race([exited.then(() => true), sleep(5_000).then(() => false)]);
      if (!done) {
        killGroup(child, 'SIGKILL');
        await exited;
      }
    },
  };
}

/** Another process answers on the port the bench chose for its own (a race over a free port). */
export class ForeignServerError extends Error {}

/**
 * Polls `url` until it answers `okStatus`; fails early when the process exits, or, given `hostId`, when
 * something answers without naming that host (header x-bench-host: another process holds the port).
 */
export async function waitReady(child: Child, url: string, timeoutMs = 60_000, okStatus = 200, hostId?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (child.hasExited()) throw new Error(`${child.name} exited during start-up (${await child.exited}). Its log (${child.logFile}):\n${child.logTail()}`);
    try {
      const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (hostId !== undefined && res.headers.get('x-bench-host') !== hostId) {
        throw new ForeignServerError(`another process answers on ${new URL(url).host} (status ${res.status}), not ${child.name}`);
      }
      if (res.status === okStatus) return;
      last = `status ${res.status}`;
    } catch (err) {
      if (err instanceof ForeignServerError) throw err;
      last = (err as Error).message;
    }
    await sleep(150);
  }
  throw new Error(`${child.name} not ready at ${url} after ${timeoutMs} ms (${last}). Its log (${child.logFile}):\n${child.logTail()}`);
}

/** Direct children of a process (Linux /proc); null where /proc is not there. */
function childrenOf(pid: number): number[] | null {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return null;
  }
  const out: number[] = [];
  for (const e of entries) {
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      // pid (comm) state ppid …: comm may hold spaces, so read after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(e));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

/**
 * How many processes serve requests: a node:cluster primary forks workers (its children) and serves
 * nothing itself; a process without children serves alone. Waits until the count holds still for a
 * second (workers start one after another). `null` when it cannot be told (no /proc).
 */
export async function servingProcesses(pid: number, timeoutMs = 20_000): Promise<number | null> {
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  let stableSince = Date.now();
  while (Date.now() < deadline) {
    const children = childrenOf(pid);
    if (children === null) return null;
    const n = children.length === 0 ? 1 : children.length;
    if (n !== last) {
      last = n;
      stableSince = Date.now();
    } else if (Date.now() - stableSince >= 1_000) {
      return n;
    }
    await sleep(100);
  }
  return last;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Runs a node script to its end, echoing its output line by line (with `prefix`); returns the exit
 * code and every line. Killed with the others if the bench exits first.
 */
export async function runScript(opts: { args: string[]; env: NodeJS.ProcessEnv; cwd: string; prefix: string }): Promise<{ code: number | null; lines: string[] }> {
  const child = spawn(process.execPath, opts.args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  running.add(child);
  const lines: string[] = [];
  const echo = (stream: NodeJS.ReadableStream, out: NodeJS.WriteStream): void => {
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      rest += chunk;
      const parts = rest.split('\n');
      rest = parts.pop() ?? '';
      for (const line of parts) {
        lines.push(line);
        out.write(`${opts.prefix}${line}\n`);
      }
    });
    stream.on('end', () => {
      if (rest) {
        lines.push(rest);
        out.write(`${opts.prefix}${rest}\n`);
      }
    });
  };
  echo(child.stdout, process.stdout);
  echo(child.stderr, process.stderr);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  });
  running.delete(child);
  return { code, lines };
}
