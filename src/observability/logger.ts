import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger } from 'pino';

/**
 * Paths that must never reach a log line, whatever a caller passes by mistake (docs/spec.md §12: no
 * SAMLResponse bodies, codes, tokens, passwords, MDM codes, cookies or Authorization headers).
 */
export const REDACT_PATHS = [
  'headers',
  'req.headers',
  '*.headers',
  'cookie',
  '*.cookie',
  'authorization',
  '*.authorization',
  'SAMLResponse',
  '*.SAMLResponse',
  'SAMLRequest',
  '*.SAMLRequest',
  'RelayState',
  '*.RelayState',
  'password',
  '*.password',
  'code',
  '*.code_verifier',
  'token',
  '*.token',
  'accessToken',
  '*.accessToken',
  'refreshToken',
  '*.refreshToken',
  'clientSecret',
  '*.clientSecret',
  'client_secret',
  '*.client_secret',
  'mdmCode',
  '*.mdmCode',
  'sessionId',
  '*.sessionId',
];

export function createLogger(options: { level: string; destination?: DestinationStream }): Logger {
  return pino(
    {
      level: options.level,
      base: { service: 'idp-bridge' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      // Errors are logged by name/message/stack only; their `cause` chains may hold raw input.
      serializers: {
        err: (err: Error) => ({ type: err.name, message: err.message, stack: err.stack }),
      },
    },
    options.destination,
  );
}
