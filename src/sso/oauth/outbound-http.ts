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
  /** S-15: 3 s, for the response headers and for each pause while reading the body. */
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
 * Connect and read timeouts as S-15 prescribes, no redirects followed, https only in production, a
 * bounded response size. A slow or broken IdP therefore costs one request at most a few seconds and
 * never blocks other tenants.
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

  private static classify(err: unknown): OutboundError {
    if (err instanceof OutboundError) return err;
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
    try {
      const res = await request(url, {
        method: 'POST',
        dispatcher: this.agent,
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams(form).toString(),
      });
      if (res.statusCode >= 300 && res.statusCode < 400) {
        await res.body.dump();
        throw new OutboundError('redirect_refused', `HTTP ${res.statusCode}`);
      }
      const text = await this.readBounded(res.body);
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        throw new OutboundError('response_not_json', `HTTP ${res.statusCode}, not JSON`);
      }
      return { status: res.statusCode, body };
    } catch (err) {
      throw OutboundHttp.classify(err);
    }
  }

  private async readBounded(body: AsyncIterable<Buffer> & { destroy?: (err?: Error) => void }): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of body) {
      size += chunk.length;
      if (size > this.options.maxResponseBytes) {
        body.destroy?.();
        throw new OutboundError('response_too_large', `over ${this.options.maxResponseBytes} bytes`);
      }
      chunks.push(chunk);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  /** A fetch for openid-client: same agent and limits, redirects not followed. */
  readonly fetch = async (input: string | URL, init: { method?: string; headers?: unknown; body?: unknown; signal?: AbortSignal | null } = {}): Promise<Response> => {
    const url = this.checkUrl(String(input));
    try {
      const res = await undiciFetch(url, {
        ...(init as Parameters<typeof undiciFetch>[1]),
        dispatcher: this.agent,
        redirect: 'manual',
      });
      if (res.status >= 300 && res.status < 400) throw new OutboundError('redirect_refused', `HTTP ${res.status}`);
      const length = Number(res.headers.get('content-length') ?? 0);
      if (length > this.options.maxResponseBytes) throw new OutboundError('response_too_large', `content-length ${length}`);
      return res as unknown as Response;
    } catch (err) {
      throw OutboundHttp.classify(err);
    }
  };

  async close(): Promise<void> {
    await this.agent.close();
  }
}
