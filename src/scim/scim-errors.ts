import type { AppError, ErrorCode } from '../errors/index.js';
import { URN } from './schema-documents.js';

/** The RFC 7644 §3.12 `scimType` of each refusal that has one. */
const SCIM_TYPES: Partial<Record<ErrorCode, string>> = {
  scim_invalid_filter: 'invalidFilter',
  scim_invalid_syntax: 'invalidSyntax',
  bad_request: 'invalidSyntax',
  scim_invalid_value: 'invalidValue',
  validation_failed: 'invalidValue',
  external_key_required: 'invalidValue',
  scim_invalid_path: 'invalidPath',
  scim_mutability: 'mutability',
  scim_too_many: 'tooMany',
  scim_uniqueness: 'uniqueness',
  account_conflict: 'uniqueness',
  external_key_conflict: 'uniqueness',
};

/**
 * A refusal on `/scim/v2` as the RFC 7644 §3.12 error body: `status` as a string, `scimType` where the
 * RFC has one, `detail` the public message (never the private detail). Built by the one error handler.
 */
export function scimErrorBody(err: AppError, requestId: string | undefined): Record<string, unknown> {
  const scimType = SCIM_TYPES[err.code];
  return {
    schemas: [URN.error],
    status: String(err.status),
    ...(scimType ? { scimType } : {}),
    detail: err.publicMessage,
    // The gateway's own code and support reference, for the tenant's administrator and our logs.
    'urn:idp-bridge:error': { code: err.code, requestId },
  };
}
