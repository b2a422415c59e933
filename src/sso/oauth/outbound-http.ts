import { Agent, fetch as undiciFetch, request, errors } from 'undici';
import { findRefusal, type OutboundPolicy } from './outbound-policy.js';

/**
 * Why a call to an IdP failed, as the tenant may learn it (audit trail, public code). Deliberately
 * coarse where a tenant administrator could otherwise probe hosts through the gateway: the policy
 * refused the address (or the name does not resolve), or the IdP could not be reached — a connect or
 * read timeout, a refused or reset connection and a TLS failure all read `idp_unreachable`. The
 * specific cause is the error's message, for the operator's log only. Answers of a reachable IdP keep
 * their own reasons.
 */
export type OutboundFailure =
  | 'outbound_refused'
  | 'idp_unreachable'
  | 'redirect_refused'
  | 'scheme_refused'
  | 'response_too_large'
  | 'response_not_json';

export class OutboundError extends Error {
  constructor(
    readonly failure: OutboundFailure,
    /** The specific cause (`connect_timeout: …`, `ECONNREFUSED`, the refused address …): operator's log only. */
    detail: string,
  ) {
    super(detail);
    this.name = 'OutboundError';
  }
}

export interface OutboundHttpOptions {
  /** S-15: 1 s. */
  connectTimeoutMs: number;
  /**
   * S-15: 3 s — for the response headers, for each pause while reading the body, and for the whole
   * answer: a call gives up `connectTimeoutMs + readTimeoutMs` after it started, so an IdP that drips
   * its answer a byte at a time cannot hold a login (or a gateway worker) open.
   */
  readTimeoutMs: number;
  maxResponseBytes: number;
  /** `http:` is allowed only outside production (tests, the demo IdP). */
  allowHttp: boolean;
  /** Where calls may go: checked before each call and again on the address each connection dials. */
  policy: OutboundPolicy;
}

export interface JsonResponse {
  status: number;
  body: unknown;
}

/**
 * The one client for calls from the gateway to customer IdPs (token, user info, discovery, JWKS).
 * Connect and read timeouts as S-15 prescribes, an overall deadline per call, no redirects followed,
 * https only in production, a bounded response size (also for the bodies openid-client reads). A slow
 * or broken IdP therefore costs one request at most a few seconds and never blocks other tenants.
 * Every call passes the outbound policy (outbound-policy.ts) before it starts and when it connects.
 */
export class OutboundHttp {
  private readonly agent: Agent;

  constructor(private readonly options: OutboundHttpOptions) {
    this.agent = new Agent({
      connect: options.policy.connector({ timeoutMs: options.connectTimeoutMs }),
      headersTimeout: options.readTimeoutMs,
      bodyTimeout: options.readTimeoutMs,
      connections: 64,
    });
  }

  /** The scheme, then the outbound policy on the host's addresses (within the call's deadline). */
  private async checkUrl(raw: string, deadline: AbortSignal): Promise<URL> {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new OutboundError('scheme_refused', 'not a URL');
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && this.options.allowHttp)) {
      throw new OutboundError('scheme_refused', `${url.protocol} is not allowed`);
    }
    await this.options.policy.checkUrl(url, deadline);
    return url;
  }

  /**
   * The signal that ends a call at its overall deadline (its reason names it, for classify), also
   * following `also` (openid-client's own signal) when given; `end()` when the call is over.
   */
  private deadline(also?: AbortSignal | null): { signal: AbortSignal; end: () => void } {
    const controller = new AbortController();
    const ms = this.options.connectTimeoutMs + this.options.readTimeoutMs;
    const timer = setTimeout(() => controller.abort(new OutboundError('idp_unreachable', `read_timeout: no complete answer within ${ms} ms`)), ms);
    const follow = (): void => controller.abort(also?.reason);
    if (also?.aborted) follow();
    else also?.addEventListener('abort', follow, { once: true });
    return {
      signal: controller.signal,
      end: () => {
        clearTimeout(timer);
        also?.removeEventListener('abort', follow);
      },
    };
  }

  private static classify(err: unknown, deadline?: AbortSignal): OutboundError {
    if (err instanceof OutboundError) return err;
    const refusal = findRefusal(err);
    if (refusal) return new OutboundError('outbound_refused', `${refusal.refusal}: ${refusal.message}`);
    if (deadline?.aborted && deadline.reason instanceof OutboundError) return deadline.reason;
    // Everything else means the IdP could not be reached; only the log tells which way.
    if (err instanceof errors.ConnectTimeoutError) return new OutboundError('idp_unreachable', `connect_timeout: ${err.message}`);
    if (err instanceof errors.HeadersTimeoutError || err instanceof errors.BodyTimeoutError) return new OutboundError('idp_unreachable', `read_timeout: ${err.message}`);
    let code: string | undefined;
    for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && code === undefined && depth < 5; e = e.cause as typeof e, depth++) {
      if (typeof e.code === 'string') code = e.code;
    }
    if (code === 'UND_ERR_CONNECT_TIMEOUT') return new OutboundError('idp_unreachable', `connect_timeout: ${code}`);
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return new OutboundError('idp_unreachable', `read_timeout: ${code}`);
    return new OutboundError('idp_unreachable', err instanceof Error ? `network_error: ${err.name}: ${code ?? err.message}` : 'network_error');
  }

  /** POSTs a form and reads a JSON answer (any status; the caller judges it). */
  async postForm(rawUrl: string, form: Record<string, string>): Promise<JsonResponse> {
    const deadline = this.deadline();
    try {
      const url = await this.checkUrl(rawUrl, deadline.signal);
      const res = await request(url, {
        method: 'POST',
        dispatcher: this.agent,
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams(form).toString(),
        signal: deadline.signal,
      });
      if (res.statusCode >= 300 && res.statusCode < 400) {
        await res.body.dump();
        throw new OutboundError('redirect_refused', `HTTP ${res.statusCode}`);
      }
      const text = (await this.readBounded(res.body)).toString('utf8');
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        throw new OutboundError('response_not_json', `HTTP ${res.statusCode}, not JSON`);
      }
      return { status: res.statusCode, body };
    } catch (err) {
      throw OutboundHttp.classify(err, deadline.signal);
    } finally {
      deadline.end();
    }
  }

  /** Reads a body to its end, giving up (and closing it) past maxResponseBytes. */
  private async readBounded(body: AsyncIterable<Uint8Array> & { destroy?: (err?: Error) => void; on?: (event: 'error', fn: () => void) => unknown }): Promise<Buffer> {
    const chunks: Uint8Array[] = [];
    let size = 0;
    // Leaving the loop early (throw) closes the stream, and with it the connection.
    for await (const chunk of body) {
      size += chunk.length;
      if (size > this.options.maxResponseBytes) {
        // Hanging up makes the stream report an abort: expected here, never an uncaught error.
        body.on?.('error', () => undefined);
        body.destroy?.();
        throw new OutboundError('response_too_large', `over ${this.options.maxResponseBytes} bytes`);
      }
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  }

  /**
   * A fetch for openid-client: same agent and limits, redirects not followed. The body is read here,
   * within the deadline and the size limit, and handed on as a complete Response: openid-client would
   * otherwise read a discovery document or JWKS of any size, at any pace.
   */
  readonly fetch = async (input: string | URL, init: { method?: string; headers?: unknown; body?: unknown; signal?: AbortSignal | null } = {}): Promise<Response> => {
    const deadline = this.deadline(init.signal);
    try {
      const url = await this.checkUrl(String(input), deadline.signal);
      const res = await undiciFetch(url, {
        ...(init as Parameters<typeof undiciFetch>[1]),
        signal: deadline.signal,
        dispatcher: this.agent,
        redirect: 'manual',
      });
      if (res.status >= 300 && res.status < 400) {
        await res.body?.cancel().catch(() => undefined);
        throw new OutboundError('redirect_refused', `HTTP ${res.status}`);
      }
      const length = Number(res.headers.get('content-length') ?? 0);
      if (length > this.options.maxResponseBytes) {
        await res.body?.cancel().catch(() => undefined);
        throw new OutboundError('response_too_large', `content-length ${length}`);
      }
      const body = res.body ? new Uint8Array(await this.readBounded(res.body)) : null;
      const nullBody = res.status === 204 || res.status === 205 || res.status === 304;
      return new Response(nullBody ? null : body, { status: res.status, statusText: res.statusText, headers: res.headers as unknown as Headers });
    } catch (err) {
      throw OutboundHttp.classify(err, deadline.signal);
    } finally {
      deadline.end();
    }
  };

  async close(): Promise<void> {
    await this.agent.close();
  }
}
