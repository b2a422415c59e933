import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/** A browser: follows redirects by hand, keeps cookies by name, stops at a URL outside the gateway. */
export class Browser {
  private readonly jar = new Map<string, string>();
  constructor(private readonly base: string) {}
  has(name: string): boolean {
    return this.jar.has(name);
  }
  value(name: string): string | undefined {
    return this.jar.get(name);
  }
  private keep(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      if (/max-age=0|expires=thu, 01 jan 1970/i.test(c) || value === '') this.jar.delete(name);
      else this.jar.set(name, value);
    }
  }
  async request(url: string, init: RequestInit = {}): Promise<Response> {
    const cookie = [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers as Record<string, string>), cookie } });
    this.keep(res);
    return res;
  }
  async follow(url: string, init: RequestInit = {}): Promise<{ url: string; res: Response }> {
    let res = await this.request(url, init);
    let current = url;
    for (let i = 0; i < 20 && res.status >= 300 && res.status < 400; i++) {
      current = new URL(res.headers.get('location')!, current).href;
      if (!current.startsWith(this.base)) return { url: current, res };
      res = await this.request(current);
    }
    return { url: current, res };
  }
}

/**
 * A suite service's back-channel logout endpoint (OpenID Connect Back-Channel Logout 1.0 §2.5), a real
 * HTTP server: records each logout_token; answers 200, or 500, or holds the request until released.
 */
export class Receiver {
  readonly tokens: string[] = [];
  mode: 'ok' | 'fail' | 'hold' = 'ok';
  private held: ServerResponse[] = [];
  private arrivals: Array<() => void> = [];
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req: IncomingMessage, res: ServerResponse) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        assert.equal(req.method, 'POST');
        assert.match(String(req.headers['content-type']), /^application\/x-www-form-urlencoded/);
        const token = new URLSearchParams(body).get('logout_token');
        if (token) this.tokens.push(token);
        for (const a of this.arrivals.splice(0)) a();
        if (this.mode === 'hold') this.held.push(res);
        else res.writeHead(this.mode === 'ok' ? 200 : 500, { 'cache-control': 'no-store' }).end();
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    const address = this.server.address();
    this.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/backchannel-logout`;
  }
  /** Resolves once a request has arrived (now or later). */
  arrived(): Promise<void> {
    return this.tokens.length > 0 ? Promise.resolve() : new Promise((r) => this.arrivals.push(r));
  }
  heldCount(): number {
    return this.held.length;
  }
  release(status: number): void {
    for (const res of this.held.splice(0)) res.writeHead(status).end();
  }
  close(): void {
    this.release(500);
    this.server.closeAllConnections();
    this.server.close();
  }
}
