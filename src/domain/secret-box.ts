import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';

const PREFIX = 'enc:v1:';

/**
 * Authenticated encryption (AES-256-GCM) of stored secrets — IdP client secrets now, MDM keys later —
 * with keys derived (HKDF-SHA256) from the gateway's `secretKeys`. The first key encrypts; every key
 * is tried to decrypt, so a new key can be put first and the old kept until secrets are re-written.
 * Each value names the key it used by a short fingerprint, never the key itself.
 */
export class SecretBox {
  private readonly keys: Array<{ id: string; key: Buffer }>;

  constructor(secretKeys: readonly string[]) {
    if (secretKeys.length === 0) throw new Error('SecretBox needs at least one key');
    this.keys = secretKeys.map((secret) => {
      const key = Buffer.from(hkdfSync('sha256', secret, 'idp-bridge', 'secret-box v1', 32));
      return { id: createHash('sha256').update(key).digest('base64url').slice(0, 8), key };
    });
  }

  static isSealed(value: string): boolean {
    return value.startsWith(PREFIX);
  }

  seal(plain: string, context: string): string {
    const { id, key } = this.keys[0]!;
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(context));
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return `${PREFIX}${id}:${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url')}`;
  }

  /** `context` must be the one given to seal (e.g. the tenant and field), so values cannot be swapped. */
  open(sealed: string, context: string): string {
    if (!SecretBox.isSealed(sealed)) throw new Error('value is not sealed');
    const [id, data] = sealed.slice(PREFIX.length).split(':');
    const entry = this.keys.find((k) => k.id === id);
    if (!entry || !data) throw new Error('sealed with an unknown key');
    const raw = Buffer.from(data, 'base64url');
    const decipher = createDecipheriv('aes-256-gcm', entry.key, raw.subarray(0, 12));
    decipher.setAAD(Buffer.from(context));
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
  }
}
