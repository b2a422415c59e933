/**
 * Pools of distinct, valid, signed SAML responses for an ACS under load. Each response answers its own
 * login — a gateway login transaction (bench/lib/in-process.ts, or `GET /d/login/{domain}` over HTTP)
 * or a Jackson session (its login route over HTTP, whose redirect to the IdP gives the RelayState and
 * the AuthnRequest ID) — and the test IdP (test/fixtures keys, xml-crypto, src/demo/saml-response.ts)
 * signs a response with that InResponseTo and a fresh assertion ID. Signing runs in worker threads.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { inflateRawSync } from 'node:zlib';
import type { SamlResponseSpec } from '../../src/demo/saml-response.js';
import { LOGIN_BINDING_COOKIE } from '../../src/http/cookies.js';
import { BENCH_IDP } from './gateway.js';
import type { PoolItem } from './phase.js';
import type { SignJob } from './sign-worker.js';

export interface StartedLogin {
  relayState: string;
  requestId: string;
  /** `idpb_login=…`: the gateway's login binding cookie of the browser that began the login (none for Jackson). */
  cookie?: string;
}

/** The gateway's login binding cookie among a response's Set-Cookie lines, as a Cookie header value. */
export function bindingCookieOf(setCookie: string[]): string | undefined {
  return setCookie.find((c) => c.startsWith(`${LOGIN_BINDING_COOKIE}=`))?.split(';')[0];
}

/** Reads RelayState and the AuthnRequest ID from an HTTP-Redirect binding URL. */
export function parseIdpRedirect(location: string): StartedLogin {
  const url = new URL(location);
  const relayState = url.searchParams.get('RelayState');
  const samlRequest = url.searchParams.get('SAMLRequest');
  if (!relayState || !samlRequest) throw new Error(`no RelayState/SAMLRequest in ${location.slice(0, 200)}`);
  const xml = inflateRawSync(Buffer.from(samlRequest, 'base64')).toString('utf8');
  const requestId = /\sID="([^"]+)"/.exec(xml)?.[1];
  if (!requestId) throw new Error('no ID in the AuthnRequest');
  return { relayState, requestId };
}

/** Runs `fn` for 0…count-1 with at most `concurrency` at once. */
export async function inParallel<T>(count: number, concurrency: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(count);
  let next = 0;
  const lanes = Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count) {
      const i = next++;
      out[i] = await fn(i);
    }
  });
  await Promise.all(lanes);
  return out;
}

/** `count` logins begun at `loginUrl` (which must answer 302 to the IdP). */
export async function beginLogins(loginUrl: string, count: number, concurrency = 16): Promise<StartedLogin[]> {
  return inParallel(count, concurrency, async () => {
    const res = await fetch(loginUrl, { redirect: 'manual' });
    const text = await res.text();
    const location = res.headers.get('location');
    if (res.status !== 302 || !location) throw new Error(`${loginUrl} answered ${res.status}: ${text.slice(0, 300)}`);
    return { ...parseIdpRedirect(location), cookie: bindingCookieOf(res.headers.getSetCookie()) };
  });
}

export interface ResponseTarget {
  /** Destination and Recipient. */
  acsUrl: string;
  audience: string;
}

interface QueuedJob {
  specs: SamlResponseSpec[];
  resolve: (out: string[]) => void;
  reject: (err: Error) => void;
}

/** Signs in worker threads (a queue of chunks; each thread signs one chunk at a time); kept for the whole run. */
export class Signer {
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, QueuedJob>();
  private readonly queue: QueuedJob[] = [];
  private readonly workers: Worker[];
  private readonly privateKey: string;
  private readonly certificate: string;

  constructor(
    repo: string,
    threads: number,
    private readonly sign: 'assertion' | 'both',
  ) {
    this.privateKey = readFileSync(join(repo, BENCH_IDP.privateKeyFile), 'utf8');
    this.certificate = readFileSync(join(repo, BENCH_IDP.certificateFile), 'utf8');
    // The worker is TypeScript: register tsx inside it before loading it (workers do not inherit hooks).
    const tsx = import.meta.resolve('tsx/esm/api');
    const file = new URL('./sign-worker.ts', import.meta.url).href;
    const bootstrap = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(file)}); });`;
    this.workers = Array.from({ length: threads }, () => {
      const w = new Worker(bootstrap, { eval: true });
      w.unref();
      w.on('message', (out: string[]) => {
        const job = this.busy.get(w);
        this.busy.delete(w);
        this.idle.push(w);
        job?.resolve(out);
        this.pump();
      });
      w.on('error', (err) => {
        this.busy.get(w)?.reject(err);
        this.busy.delete(w);
      });
      return w;
    });
    this.idle.push(...this.workers);
  }

  private pump(): void {
    while (this.idle.length && this.queue.length) {
      const w = this.idle.pop()!;
      const job = this.queue.shift()!;
      this.busy.set(w, job);
      const message: SignJob = { specs: job.specs, privateKey: this.privateKey, certificate: this.certificate, sign: this.sign };
      w.postMessage(message);
    }
  }

  /** Signs every spec; returns base64 responses in order. */
  async signAll(specs: SamlResponseSpec[], chunk = 100): Promise<string[]> {
    const parts: Array<Promise<string[]>> = [];
    for (let i = 0; i < specs.length; i += chunk) {
      const slice = specs.slice(i, i + chunk);
      parts.push(new Promise<string[]>((resolve, reject) => this.queue.push({ specs: slice, resolve, reject })));
    }
    this.pump();
    return (await Promise.all(parts)).flat();
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

export interface AcsPoolInput {
  logins: StartedLogin[];
  target: ResponseTarget;
  /** NameIDs, cycled. */
  nameIds: string[];
  signer: Signer;
  /** Assertion lifetime (NotOnOrAfter); the pool must be used within it. */
  validForMs?: number;
}

/** Form bodies `SAMLResponse=…&RelayState=…`, one per login, with the login's binding cookie when it has one. */
export async function buildAcsPool(input: AcsPoolInput): Promise<PoolItem[]> {
  const now = Date.now();
  const specs: SamlResponseSpec[] = input.logins.map((login, i) => ({
    issuer: BENCH_IDP.entityId,
    destination: input.target.acsUrl,
    inResponseTo: login.requestId,
    recipient: input.target.acsUrl,
    audience: input.target.audience,
    nameId: input.nameIds[i % input.nameIds.length]!,
    now,
    validForMs: input.validForMs ?? 15 * 60_000,
  }));
  const signed = await input.signer.signAll(specs);
  return signed.map((samlResponse, i) => {
    const login = input.logins[i]!;
    const body = new URLSearchParams({ SAMLResponse: samlResponse, RelayState: login.relayState }).toString();
    return login.cookie ? { body, headers: { cookie: login.cookie } } : { body };
  });
}

/**
 * `count` logins (begun by `begin`) answered by signed responses, as form bodies. Logins are begun in
 * chunks and each chunk is signed while the next one is begun.
 */
export async function loginResponsePool(input: Omit<AcsPoolInput, 'logins'> & { begin: (n: number) => Promise<StartedLogin[]>; count: number; chunk?: number }): Promise<PoolItem[]> {
  const chunk = input.chunk ?? 500;
  const parts: Array<Promise<PoolItem[]>> = [];
  for (let start = 0; start < input.count; start += chunk) {
    const logins = await input.begin(Math.min(chunk, input.count - start));
    const part = buildAcsPool({ ...input, logins });
    part.catch(() => undefined); // awaited below; do not let it count as unhandled meanwhile
    parts.push(part);
  }
  return (await Promise.all(parts)).flat();
}
