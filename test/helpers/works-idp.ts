import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';

/**
 * A test IdP speaking the suite's `works` OAuth profile (S-14, S-15) on a real loopback HTTP port:
 *
 * - `POST /token` (Access Token Return API): form `grant_type=authorization_code, client_id,
 *   client_secret, code`. Codes are one-time and bound to the client they were issued for.
 *   Bad client → 401 `{error:'unauthorized_client'}`; bad code → 400 `{error:'invalid_grant'}`.
 * - `POST /userinfo` (Return User Information API): form `client_id, client_secret, access_token` →
 *   `{user_id}`, or the profile's numeric error codes.
 *
 * The browser leg (`/authorize`) is skipped: tests mint a code with `issueCode(userId)` and call the
 * gateway's callback themselves. Every request is recorded so tests can check the exact wire format.
 */

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The raw body as received. */
  rawBody: string;
  /** The body parsed as a form (empty when it is not form-encoded). */
  form: Record<string, string>;
  /** Every form field name in order, repeats included. */
  formKeys: string[];
}

export type TokenMode =
  /** Answer per the profile. */
  | 'ok'
  /** 400 with an `error` member, even for a valid code. */
  | 'error'
  /** 500 with a JSON body without `error`. */
  | 'http_error'
  /** 200 without `access_token`. */
  | 'no_access_token'
  /** 302 to /elsewhere (must not be followed). */
  | 'redirect';

export type UserInfoMode = 'ok' | '101' | '201' | '301' | '303' | 'no_user_id';

const USERINFO_ERROR_DESCRIPTIONS: Record<Exclude<UserInfoMode, 'ok' | 'no_user_id'>, string> = {
  '101': 'access_denied',
  '201': 'invalid_request',
  '301': 'unauthorized_client',
  '303': 'invalid_access',
};

export interface WorksIdpSettings {
  /** Delay before answering token requests (read-timeout tests). */
  tokenDelayMs: number;
  /** `expires_in` in the token answer: a number, a string, or left out (undefined). */
  expiresIn: number | string | undefined;
  tokenMode: TokenMode;
  userInfoMode: UserInfoMode;
  /** `token_type` in the token answer (left out when undefined). */
  tokenType: string | undefined;
}

const DEFAULT_SETTINGS: WorksIdpSettings = { tokenDelayMs: 0, expiresIn: 3600, tokenMode: 'ok', userInfoMode: 'ok', tokenType: 'Bearer' };

export interface WorksIdp {
  /** `http://127.0.0.1:<port>` */
  url: string;
  tokenUrl: string;
  userInfoUrl: string;
  /** Mutable behaviour; `reset()` restores the defaults. */
  settings: WorksIdpSettings;
  /** Every request received, oldest first. */
  requests: RecordedRequest[];
  /** TCP connections accepted since the start (the SSRF tests check that a refused call opened none). */
  connections: () => number;
  /** Every code and access token this IdP ever issued (to scan logs for leaks). */
  issuedCodes: string[];
  issuedTokens: string[];
  /** A one-time authorization code for `userId`, bound to `clientId` (the default client unless given). */
  issueCode: (userId: string, clientId?: string) => string;
  /** Requests to `path`, oldest first. */
  requestsTo: (path: string) => RecordedRequest[];
  /** Restores the default settings and forgets the recorded requests. */
  reset: () => void;
  close: () => Promise<void>;
}

export interface WorksIdpOptions {
  /** Registered clients: client id → client secret. The first is the default for `issueCode`. */
  clients: Record<string, string>;
}

function parseForm(headers: IncomingHttpHeaders, raw: string): { form: Record<string, string>; formKeys: string[] } {
  const type = (headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') return { form: {}, formKeys: [] };
  const params = new URLSearchParams(raw);
  const form: Record<string, string> = {};
  const formKeys: string[] = [];
  for (const [k, v] of params) {
    formKeys.push(k);
    form[k] = v;
  }
  return { form, formKeys };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.destroyed || res.writableEnded) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json;charset=UTF-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

export async function startWorksIdp(options: WorksIdpOptions): Promise<WorksIdp> {
  const clientIds = Object.keys(options.clients);
  if (clientIds.length === 0) throw new Error('the works IdP needs at least one client');
  const codes = new Map<string, { userId: string; clientId: string }>();
  const tokens = new Map<string, { userId: string; clientId: string }>();
  const requests: RecordedRequest[] = [];
  const issuedCodes: string[] = [];
  const issuedTokens: string[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const settings: WorksIdpSettings = { ...DEFAULT_SETTINGS };

  const clientOk = (form: Record<string, string>): boolean => {
    const id = form.client_id;
    return id !== undefined && Object.hasOwn(options.clients, id) && options.clients[id] === form.client_secret;
  };

  const answerToken = (form: Record<string, string>, res: ServerResponse, base: string): void => {
    switch (settings.tokenMode) {
      case 'redirect':
        res.writeHead(302, { location: `${base}/elsewhere`, 'content-length': 0 });
        res.end();
        return;
      case 'error':
        sendJson(res, 400, { error: 'invalid_request', error_description: 'refused by test mode' });
        return;
      case 'http_error':
        sendJson(res, 500, { message: 'internal error' });
        return;
      default:
        break;
    }
    if (form.grant_type !== 'authorization_code') {
      sendJson(res, 400, { error: 'unsupported_grant_type' });
      return;
    }
    if (!clientOk(form)) {
      sendJson(res, 401, { error: 'unauthorized_client' });
      return;
    }
    const code = form.code ?? '';
    const issued = codes.get(code);
    // One-time: the code is gone whether or not it was issued to this client.
    codes.delete(code);
    if (!issued || issued.clientId !== form.client_id) {
      sendJson(res, 400, { error: 'invalid_grant' });
      return;
    }
    if (settings.tokenMode === 'no_access_token') {
      sendJson(res, 200, { token_type: 'Bearer', expires_in: settings.expiresIn });
      return;
    }
    const accessToken = `at-${randomBytes(18).toString('base64url')}`;
    tokens.set(accessToken, issued);
    issuedTokens.push(accessToken);
    const body: Record<string, unknown> = { access_token: accessToken };
    if (settings.tokenType !== undefined) body.token_type = settings.tokenType;
    if (settings.expiresIn !== undefined) body.expires_in = settings.expiresIn;
    sendJson(res, 200, body);
  };

  const answerUserInfo = (form: Record<string, string>, res: ServerResponse): void => {
    if (settings.userInfoMode !== 'ok' && settings.userInfoMode !== 'no_user_id') {
      const code = settings.userInfoMode;
      sendJson(res, 200, { error: code, error_description: USERINFO_ERROR_DESCRIPTIONS[code] });
      return;
    }
    if (!clientOk(form)) {
      sendJson(res, 200, { error: '301', error_description: 'unauthorized_client' });
      return;
    }
    const token = tokens.get(form.access_token ?? '');
    if (!token || token.clientId !== form.client_id) {
      sendJson(res, 200, { error: '303', error_description: 'invalid_access' });
      return;
    }
    sendJson(res, 200, settings.userInfoMode === 'no_user_id' ? {} : { user_id: token.userId });
  };

  let base = '';
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      const url = new URL(req.url ?? '/', base);
      const { form, formKeys } = parseForm(req.headers, rawBody);
      requests.push({ method: req.method ?? '', path: url.pathname, headers: req.headers, rawBody, form, formKeys });
      if (req.method === 'POST' && url.pathname === '/token') {
        if (settings.tokenDelayMs > 0) {
          const t = setTimeout(() => {
            timers.delete(t);
            answerToken(form, res, base);
          }, settings.tokenDelayMs);
          timers.add(t);
        } else answerToken(form, res, base);
        return;
      }
      if (req.method === 'POST' && url.pathname === '/userinfo') {
        answerUserInfo(form, res);
        return;
      }
      sendJson(res, 404, { error: 'not_found' });
    });
  });
  let connections = 0;
  server.on('connection', () => connections++);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as { port: number };
  base = `http://127.0.0.1:${port}`;

  return {
    url: base,
    tokenUrl: `${base}/token`,
    userInfoUrl: `${base}/userinfo`,
    settings,
    requests,
    connections: () => connections,
    issuedCodes,
    issuedTokens,
    issueCode: (userId, clientId = clientIds[0]!) => {
      const code = `code-${randomBytes(18).toString('base64url')}`;
      codes.set(code, { userId, clientId });
      issuedCodes.push(code);
      return code;
    },
    requestsTo: (path) => requests.filter((r) => r.path === path),
    reset: () => {
      Object.assign(settings, DEFAULT_SETTINGS);
      requests.length = 0;
    },
    close: async () => {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * A loopback address where the TCP connect itself hangs (S-15 connect timeout): a Python socket that
 * listens with a backlog of 0 and never accepts, and client connections from this process filling its
 * accept queue. Linux then drops further SYNs, so a client's connect neither succeeds nor is refused.
 */
export interface BlackHole {
  port: number;
  url: string;
  close: () => Promise<void>;
}

const BLACK_HOLE_PY = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(('127.0.0.1', int(sys.argv[1])))
s.listen(0)
print(s.getsockname()[1], flush=True)
sys.stdin.read()
`;

function tryConnect(port: number, waitMs: number): Promise<{ socket: Socket; connected: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    const timer = setTimeout(() => resolve({ socket, connected: false }), waitMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve({ socket, connected: true });
    });
  });
}

/** `port` 0 lets the kernel choose a free one (no race with other processes). */
export async function startBlackHole(port = 0): Promise<BlackHole> {
  const child: ChildProcess = spawn('python3', ['-c', BLACK_HOLE_PY, String(port)], { stdio: ['pipe', 'pipe', 'pipe'] });
  const fillers: Socket[] = [];
  const close = async (): Promise<void> => {
    for (const s of fillers) s.destroy();
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGKILL');
      await exited;
    }
  };
  try {
    const bound = await new Promise<number>((resolve, reject) => {
      let out = '';
      let err = '';
      const timer = setTimeout(() => reject(new Error(`black hole did not start: ${err}`)), 5000);
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString('utf8');
        if (out.includes('\n')) {
          clearTimeout(timer);
          resolve(Number(out.trim()));
        }
      });
      child.stderr!.on('data', (d: Buffer) => (err += d.toString('utf8')));
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`black hole exited with ${code}: ${err}`));
      });
    });
    // Fill the accept queue until a connect no longer completes: from then on SYNs go unanswered.
    for (let i = 0; i < 8; i++) {
      const { socket, connected } = await tryConnect(bound, 400);
      fillers.push(socket);
      if (!connected) return { port: bound, url: `http://127.0.0.1:${bound}`, close };
    }
    throw new Error('the accept queue of the black hole never filled: connects keep completing');
  } catch (err) {
    await close();
    throw err;
  }
}
