import { Router, type Request, type Response } from 'express';
import { AppError } from '../../errors/index.js';
import type { Config } from '../../config/index.js';
import type { Metrics } from '../../observability/metrics.js';
import { cachedReadiness, type KeyValueStore } from '../../store/index.js';
import { sameSecret } from '../../domain/secret-compare.js';

export function healthRoutes(store: KeyValueStore, metrics: Metrics, options: Config['metrics']): Router {
  const router = Router();
  const ready = cachedReadiness(store);
  // Liveness: the process is up and serving HTTP (used by the Dockerfile HEALTHCHECK). Never asks the
  // store: a store outage must not make an orchestrator restart healthy processes.
  router.get('/healthz', (_req: Request, res: Response) => {
    res.json({ status: 'ok' });
  });
  // Readiness: the store can serve every key now (a ping; on a Redis Cluster, every slot covered and
  // every master answering cluster_state:ok), checked at most every READY_CACHE_MS; 503
  // store_unavailable otherwise, so load balancers send traffic elsewhere until it can.
  router.get('/readyz', async (_req: Request, res: Response) => {
    await ready();
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
