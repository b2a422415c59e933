import { X509Certificate } from 'node:crypto';
import { AppError } from '../../errors/index.js';

const PEM_RE = /^-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END CERTIFICATE-----\s*$/;

/**
 * S-12: certificates are accepted in PEM only. DER (binary) or anything else is refused with a
 * "convert to PEM" message; a PEM that does not parse as X.509 is refused as invalid.
 * Returns the normalised PEM.
 */
export function normaliseCertificatePem(input: string): string {
  const text = input.trim().replace(/\r\n/g, '\n') + '\n';
  if (!PEM_RE.test(text)) throw new AppError('certificate_not_pem', { detail: 'certificate is not PEM' });
  try {
    new X509Certificate(text);
  } catch (err) {
    throw new AppError('certificate_invalid', { detail: 'PEM does not hold an X.509 certificate', cause: err });
  }
  return text;
}

/** Wraps the Base64 body found in metadata (`<ds:X509Certificate>`) as PEM and validates it. */
export function certificateFromBase64(body: string): string {
  const b64 = body.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+=*$/.test(b64)) throw new AppError('certificate_invalid', { detail: 'X509Certificate is not base64' });
  const lines = b64.match(/.{1,64}/g) ?? [];
  return normaliseCertificatePem(`-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`);
}
