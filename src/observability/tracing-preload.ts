/**
 * Loaded with `node --import ./dist/observability/tracing-preload.js dist/main.js` (the image's CMD;
 * cluster workers inherit the flag), before express, node:http and ioredis are imported, so that their
 * instrumentations can hook them. When the OTEL_* variables ask for no traces this module loads
 * nothing more: no SDK, no loader hook, and our spans go to the no-op API. Reads process.env itself
 * (the config loader runs later, inside main), as every OpenTelemetry SDK does.
 */
import { tracesRequested } from './tracing-env.js';

if (tracesRequested(process.env)) {
  const { startTracing } = await import('./tracing-sdk.js');
  await startTracing();
}
