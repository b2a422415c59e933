import { Router, type Request, type Response } from 'express';
import { AppError } from '../../errors/index.js';
import type { KeyValueStore } from '../../store/index.js';

const READY_TIMEOUT_MS = 1000;

export function healthRoutes(store: KeyValueStore): Router {
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
  return router;
}
