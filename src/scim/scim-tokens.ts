import { randomBytes } from 'node:crypto';
import type { Clock } from '../domain/clock.js';
import { AppError } from '../errors/index.js';
import { digestForKey, keys, type KeyValueStore } from '../store/index.js';

/** A SCIM token as stored (never the token itself: its SHA-256 is the key). */
interface StoredScimToken {
  id: string;
  domain: string;
  name: string;
  createdAt: number;
  rotatedAt?: number;
}

/** A SCIM token as the admin API lists it. */
export interface ScimTokenView {
  id: string;
  name: string;
  createdAt: string;
  rotatedAt: string | null;
}

/** Who is calling the SCIM API: one token of one tenant. */
export interface ScimPrincipal {
  tokenId: string;
  domain: string;
}

/** Tokens a tenant may hold at once (one per provisioning app, plus room to rotate). */
export const SCIM_TOKEN_LIMIT = 10;
const TOKEN_RE = /^scim_[A-Za-z0-9_-]{43}$/;

/**
 * Per-tenant SCIM bearer tokens (docs/spec.md §14): 256 random bits, shown once at issue and at each
 * rotation; only the SHA-256 is stored. Rotation keeps the id (the audit actor) and ends the old
 * secret at once; revocation deletes the token.
 */
export class ScimTokens {
  constructor(
    private readonly store: KeyValueStore,
    private readonly clock: Clock,
  ) {}

  async resolve(presented: string | undefined): Promise<ScimPrincipal | null> {
    if (!presented || !TOKEN_RE.test(presented)) return null;
    const raw = await this.store.get(keys.scimToken(digestForKey(presented)));
    if (raw === null) return null;
    const stored = JSON.parse(raw) as StoredScimToken;
    return { tokenId: stored.id, domain: stored.domain };
  }

  async issue(domain: string, name: string): Promise<ScimTokenView & { token: string }> {
    if ((await this.store.hLen(keys.scimTokensOf(domain))) >= SCIM_TOKEN_LIMIT) throw new AppError('scim_token_limit');
    const stored: StoredScimToken = { id: `scimtok_${randomBytes(8).toString('hex')}`, domain, name, createdAt: this.clock.now() };
    const token = await this.write(stored);
    return { ...view(stored), token };
  }

  /** A new secret for the same token id; the old one stops working at once. Null when there is no such token. */
  async rotate(domain: string, id: string): Promise<(ScimTokenView & { token: string }) | null> {
    const digest = await this.store.hGet(keys.scimTokensOf(domain), id);
    if (digest === null) return null;
    const raw = await this.store.get(keys.scimToken(digest));
    if (raw === null) return null;
    const stored: StoredScimToken = { ...(JSON.parse(raw) as StoredScimToken), rotatedAt: this.clock.now() };
    await this.store.del(keys.scimToken(digest));
    const token = await this.write(stored);
    return { ...view(stored), token };
  }

  async list(domain: string): Promise<ScimTokenView[]> {
    const out: ScimTokenView[] = [];
    for (const digest of Object.values(await this.store.hGetAll(keys.scimTokensOf(domain)))) {
      const raw = await this.store.get(keys.scimToken(digest));
      if (raw !== null) out.push(view(JSON.parse(raw) as StoredScimToken));
    }
    return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /** True when the token existed. */
  async revoke(domain: string, id: string): Promise<boolean> {
    const digest = await this.store.hGet(keys.scimTokensOf(domain), id);
    if (digest === null) return false;
    await this.store.del(keys.scimToken(digest));
    await this.store.hDel(keys.scimTokensOf(domain), id);
    return true;
  }

  private async write(stored: StoredScimToken): Promise<string> {
    const token = `scim_${randomBytes(32).toString('base64url')}`;
    const digest = digestForKey(token);
    await this.store.set(keys.scimToken(digest), JSON.stringify(stored));
    await this.store.hSet(keys.scimTokensOf(stored.domain), { [stored.id]: digest });
    return token;
  }
}

function view(t: StoredScimToken): ScimTokenView {
  return { id: t.id, name: t.name, createdAt: new Date(t.createdAt).toISOString(), rotatedAt: t.rotatedAt === undefined ? null : new Date(t.rotatedAt).toISOString() };
}
