import { Router, type Request, type Response } from 'express';
import { AppError } from '../../errors/index.js';
import type { Config } from '../../config/index.js';
import type { Metrics } from '../../observability/metrics.js';
import type { KeyValueStore } from '../../store/index.js';
import { sameSecret } from '../../domain/secret-compare.js';

const READY_TIMEOUT_MS = 1000;

export function healthRoutes(store: KeyValueStore, metrics: Metrics, options: Config['metrics']): Router {
  const router = Router();
  // The process is up (used by the Dockerfile HEALTHCHECK).
  router.get('/healthz', (_req: Request, res: Response) => {
    res.json({ status: 'ok' });
  });
  // The store answers within a second; 503 store_unavailable otherwise.
  router.get('/readyz', async (_req: Request, res: Response) => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new AppError('store_unavailable', { detail: 'readiness ping timed out' })), READY_TIMEOUT_MS);
    });
    try {
      await Promise.race([store.ping(), timeout]);
    } finally {
      clearTimeout(timer);
    }
    res.json({ status: 'ready', store: store.kind });
  });
  // Prometheus (docs/spec.md §12). With metrics.bearerToken set, scrapers must send it.
  if (options.enabled) {
    router.get('/metrics', async (req: Request, res: Response) => {
      if (options.bearerToken !== undefined) {
        const presented = /^Bearer (.+)$/.exec(req.get('authorization') ?? '')?.[1] ?? '';
        if (!sameSecret(presented, options.bearerToken)) throw new AppError('unauthorized', { detail: 'metrics bearer token missing or wrong' });
      }
      const { contentType, body } = await metrics.text();
      res.type(contentType).send(body);
    });
  }
  return router;
}
