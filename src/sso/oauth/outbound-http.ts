import { Agent, fetch as undiciFetch, request, errors } from 'undici';

/** Why a call to an IdP failed; kept as a distinct reason in logs and audit. */
export type OutboundFailure =
  | 'connect_timeout'
  | 'read_timeout'
  | 'network_error'
  | 'redirect_refused'
  | 'scheme_refused'
  | 'response_too_large'
  | 'response_not_json';

export class OutboundError extends Error {
  constructor(
    readonly failure: OutboundFailure,
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
 */
export class OutboundHttp {
  private readonly agent: Agent;

  constructor(private readonly options: OutboundHttpOptions) {
    this.agent = new Agent({
      connect: { timeout: options.connectTimeoutMs },
      headersTimeout: options.readTimeoutMs,
      bodyTimeout: options.readTimeoutMs,
      connections: 64,
    });
  }

  private checkUrl(raw: string): URL {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new OutboundError('scheme_refused', 'not a URL');
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && this.options.allowHttp)) {
      throw new OutboundError('scheme_refused', `${url.protocol} is not allowed`);
    }
    return url;
  }

  /**
   * The signal that ends a call at its overall deadline (its reason names it, for classify), also
   * following `also` (openid-client's own signal) when given; `end()` when the call is over.
   */
  private deadline(also?: AbortSignal | null): { signal: AbortSignal; end: () => void } {
    const controller = new AbortController();
    const ms = this.options.connectTimeoutMs + this.options.readTimeoutMs;
    const timer = setTimeout(() => controller.abort(new OutboundError('read_timeout', `no complete answer within ${ms} ms`)), ms);
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
    if (deadline?.aborted && deadline.reason instanceof OutboundError) return deadline.reason;
    if (err instanceof errors.ConnectTimeoutError) return new OutboundError('connect_timeout', err.message);
    if (err instanceof errors.HeadersTimeoutError || err instanceof errors.BodyTimeoutError) return new OutboundError('read_timeout', err.message);
    const code = (err as { code?: string }).code;
    if (code === 'UND_ERR_CONNECT_TIMEOUT') return new OutboundError('connect_timeout', code);
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return new OutboundError('read_timeout', code);
    return new OutboundError('network_error', err instanceof Error ? `${err.name}: ${code ?? err.message}` : 'network error');
  }

  /** POSTs a form and reads a JSON answer (any status; the caller judges it). */
  async postForm(rawUrl: string, form: Record<string, string>): Promise<JsonResponse> {
    const url = this.checkUrl(rawUrl);
    const deadline = this.deadline();
    try {
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
    const url = this.checkUrl(String(input));
    const deadline = this.deadline(init.signal);
    try {
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
