import type { Request } from 'express';
import { AppError } from '../../../errors/index.js';

/**
 * A CSV upload (external keys, members): `text/csv`, UTF-8 (or no charset), no content encoding;
 * anything else is 415 `unsupported_media_type`, and the body is then discarded unread.
 */
export function assertCsvUpload(req: Request): void {
  const type = (req.get('content-type') ?? '').toLowerCase();
  const match = /^text\/csv\s*(?:;(.*))?$/.exec(type);
  const charset = /(?:^|;)\s*charset\s*=\s*"?([^";\s]+)/.exec(match?.[1] ?? '')?.[1];
  const encoding = (req.get('content-encoding') ?? 'identity').toLowerCase();
  if (!match || (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') || encoding !== 'identity') {
    req.resume();
    throw new AppError('unsupported_media_type', { detail: `csv upload with ${type.slice(0, 100) || 'no content type'}, encoding ${encoding.slice(0, 50)}`, message: 'Upload the file as text/csv in UTF-8.' });
  }
}
