import { createHmac, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TenantEvent } from '../../src/observability/events.js';

/** A real HTTP receiver: answers by `mode`, records every request with its raw body. */
export class Receiver {
  mode: 'ok' | 'fail' | 'down' | 'hang' = 'ok';
  /** In `fail` mode: this many more 500s, then ok. */
  failures = 0;
  readonly requests: Array<{ headers: IncomingMessage['headers']; body: string }> = [];
  private held: ServerResponse[] = [];
  private onRequest: Array<() => void> = [];
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.requests.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        for (const f of this.onRequest.splice(0)) f();
        if (this.mode === 'down') return void req.socket.destroy();
        if (this.mode === 'hang') return void this.held.push(res);
        if (this.mode === 'fail' && this.failures > 0) {
          this.failures--;
          res.writeHead(500).end('no');
          return;
        }
        res.writeHead(204).end();
      });
    });
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  /** Resolves at the next request received. */
  nextRequest(): Promise<void> {
    return new Promise((resolve) => this.onRequest.push(resolve));
  }

  release(): void {
    for (const res of this.held.splice(0)) res.writeHead(204).end();
  }

  async stop(): Promise<void> {
    this.release();
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, 'close');
  }
}

/** Standard Webhooks verification, written from the spec (not the gateway's code). */
export function verified(secret: string, r: { headers: IncomingMessage['headers']; body: string }): boolean {
  const id = String(r.headers['webhook-id']);
  const ts = String(r.headers['webhook-timestamp']);
  const expected = createHmac('sha256', Buffer.from(secret.slice('whsec_'.length), 'base64')).update(`${id}.${ts}.${r.body}`).digest();
  return String(r.headers['webhook-signature'])
    .split(' ')
    .some((sig) => {
      const [version, value] = sig.split(',');
      const got = Buffer.from(value ?? '', 'base64');
      return version === 'v1' && got.length === expected.length && timingSafeEqual(got, expected);
    });
}

export const eventsOf = (r: { body: string }): TenantEvent[] => (JSON.parse(r.body) as { events: TenantEvent[] }).events;
