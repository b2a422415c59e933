import type { z } from 'zod';
import { AppError } from '../errors/index.js';

/** Parses a request body against a schema; 400 `validation_failed` lists every problem by path. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const parsed = schema.safeParse(body ?? {});
  if (parsed.success) return parsed.data;
  throw new AppError('validation_failed', {
    details: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
    detail: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ').slice(0, 500),
  });
}
