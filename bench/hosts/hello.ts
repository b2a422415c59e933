/**
 * Floor of `GET /d/login/{domain}` (docs/spec.md §13): a bare Express 5 app answering "hello", with the same
 * process count as the gateway under test. `BENCH_PORT`, `BENCH_PROCESSES`.
 */
import express from 'express';
import { serve } from './serve.js';

await serve({
  build: () => {
    const app = express();
    app.disable('x-powered-by');
    app.get('/hello', (_req, res) => {
      res.type('text').send('hello');
    });
    return app;
  },
});
