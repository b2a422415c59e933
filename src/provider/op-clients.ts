import { randomBytes } from 'node:crypto';
import type { Config } from '../config/index.js';
import type { Clock } from '../domain/clock.js';
import type { SecretBox } from '../domain/secret-box.js';
import { AppError } from '../errors/index.js';
import { keys, type KeyValueStore } from '../store/index.js';

/** How a service client authenticates at the token endpoint. API-made clients are confidential. */
export type OpClientAuthMethod = 'client_secret_basic' | 'client_secret_post';

/** What the store keeps of a client added through the admin API (the secret sealed, never plain). */
interface StoredOpClient {
  client_id: string;
  name: string;
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  /** S-19: OpenID Connect Back-Channel Logout 1.0 receiver (absent in clients stored before it existed). */
  backchannel_logout_uri?: string;
  token_endpoint_auth_method: OpClientAuthMethod;
  sealedSecret: string;
  createdAt: number;
  updatedAt: number;
}

/** A client as the admin API lists it: config clients too (read-only), never a secret. */
export interface OpClientView {
  clientId: string;
  name: string | null;
  source: 'config' | 'api';
  readOnly: boolean;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  backchannelLogoutUri: string | null;
  tokenEndpointAuthMethod: string;
  grantTypes: string[];
  createdAt: string | null;
  updatedAt: string | null;
}

export const OP_CLIENT_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{2,99}$/;
/** At most this many clients made through the API: each is a hash field read on every OP request that names it. */
export const OP_CLIENTS_MAX = 200;

const secretContext = (clientId: string): string => `op-client:${clientId}:client_secret`;

/**
 * The OP's service clients (O-1): those of the config file (read-only here) and those the operator adds
 * through the admin API, kept in one hash of the store. oidc-provider looks a client up first among the
 * config ones (static) and then through its adapter's `Client` model, which reads this hash on each
 * lookup — so every worker and every instance sees an added, changed or deleted client at once, with no
 * restart (oidc-provider keeps a parsed client only by the hash of its metadata). The secret is
 * generated here, shown once, and stored sealed with the gateway's secret keys: oidc-provider needs the
 * plain value to check client_secret_basic / client_secret_post, so a one-way hash cannot serve.
 */
export class OpClients {
  private readonly configIds: Set<string>;

  constructor(
    private readonly deps: { store: KeyValueStore; clock: Clock; secrets: SecretBox; config: Pick<Config, 'oidc' | 'env'> },
  ) {
    this.configIds = new Set(deps.config.oidc.clients.map((c) => c.client_id));
  }

  async list(): Promise<OpClientView[]> {
    const fromConfig: OpClientView[] = this.deps.config.oidc.clients.map((c) => ({
      clientId: c.client_id,
      name: null,
      source: 'config',
      readOnly: true,
      redirectUris: c.redirect_uris,
      postLogoutRedirectUris: c.post_logout_redirect_uris ?? [],
      backchannelLogoutUri: c.backchannel_logout_uri ?? null,
      tokenEndpointAuthMethod: c.token_endpoint_auth_method ?? 'client_secret_basic',
      grantTypes: c.grant_types,
      createdAt: null,
      updatedAt: null,
    }));
    const stored = Object.values(await this.deps.store.hGetAll(keys.opClients()))
      .map((raw) => JSON.parse(raw) as StoredOpClient)
      .sort((a, b) => a.client_id.localeCompare(b.client_id));
    return [...fromConfig, ...stored.map((c) => this.view(c))];
  }

  /** A new confidential client; its secret is returned here only. */
  async create(input: { clientId: string; name: string; redirectUris: string[]; postLogoutRedirectUris?: string[]; backchannelLogoutUri?: string; tokenEndpointAuthMethod: OpClientAuthMethod }): Promise<{ client: OpClientView; clientSecret: string }> {
    if (this.configIds.has(input.clientId)) throw new AppError('conflict', { message: 'A client with this client_id is in the configuration file.' });
    this.checkUris(input.redirectUris, input.postLogoutRedirectUris ?? [], input.backchannelLogoutUri);
    if ((await this.deps.store.hLen(keys.opClients())) >= OP_CLIENTS_MAX) throw new AppError('conflict', { message: `At most ${OP_CLIENTS_MAX} clients can be added through the API.` });
    const clientSecret = randomBytes(32).toString('base64url');
    const now = this.deps.clock.now();
    const stored: StoredOpClient = {
      client_id: input.clientId,
      name: input.name,
      redirect_uris: input.redirectUris,
      post_logout_redirect_uris: input.postLogoutRedirectUris ?? [],
      ...(input.backchannelLogoutUri ? { backchannel_logout_uri: input.backchannelLogoutUri } : {}),
      token_endpoint_auth_method: input.tokenEndpointAuthMethod,
      sealedSecret: this.deps.secrets.seal(clientSecret, secretContext(input.clientId)),
      createdAt: now,
      updatedAt: now,
    };
    if (!(await this.deps.store.hSetNx(keys.opClients(), input.clientId, JSON.stringify(stored)))) {
      throw new AppError('conflict', { message: 'A client with this client_id exists.' });
    }
    return { client: this.view(stored), clientSecret };
  }

  /** New redirect URIs (and post-logout ones when given) of an API-made client. */
  async update(clientId: string, patch: { name?: string; redirectUris?: string[]; postLogoutRedirectUris?: string[]; backchannelLogoutUri?: string | null }): Promise<OpClientView> {
    const { backchannel_logout_uri: currentBackchannel, ...current } = await this.stored(clientId);
    const backchannel = patch.backchannelLogoutUri === undefined ? currentBackchannel : (patch.backchannelLogoutUri ?? undefined);
    const next: StoredOpClient = {
      ...current,
      ...(backchannel ? { backchannel_logout_uri: backchannel } : {}),
      name: patch.name ?? current.name,
      redirect_uris: patch.redirectUris ?? current.redirect_uris,
      post_logout_redirect_uris: patch.postLogoutRedirectUris ?? current.post_logout_redirect_uris,
      updatedAt: this.deps.clock.now(),
    };
    this.checkUris(next.redirect_uris, next.post_logout_redirect_uris, next.backchannel_logout_uri);
    await this.deps.store.hSet(keys.opClients(), { [clientId]: JSON.stringify(next) });
    return this.view(next);
  }

  async remove(clientId: string): Promise<void> {
    await this.stored(clientId);
    await this.deps.store.hDel(keys.opClients(), clientId);
  }

  /** oidc-provider's metadata of an API-made client (the secret opened), for the adapter's `Client` model. */
  async metadataOf(clientId: string): Promise<Record<string, unknown> | undefined> {
    if (!OP_CLIENT_ID_RE.test(clientId)) return undefined;
    const raw = await this.deps.store.hGet(keys.opClients(), clientId);
    if (raw === null) return undefined;
    const c = JSON.parse(raw) as StoredOpClient;
    return {
      client_id: c.client_id,
      client_secret: this.deps.secrets.open(c.sealedSecret, secretContext(c.client_id)),
      redirect_uris: c.redirect_uris,
      post_logout_redirect_uris: c.post_logout_redirect_uris,
      // Their ID tokens carry `sid`, so a logout token can name the very session that ended.
      ...(c.backchannel_logout_uri ? { backchannel_logout_uri: c.backchannel_logout_uri, backchannel_logout_session_required: true } : {}),
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: c.token_endpoint_auth_method,
      application_type: 'web',
    };
  }

  private async stored(clientId: string): Promise<StoredOpClient> {
    if (this.configIds.has(clientId)) throw new AppError('forbidden', { message: 'Clients of the configuration file are changed there.' });
    const raw = OP_CLIENT_ID_RE.test(clientId) ? await this.deps.store.hGet(keys.opClients(), clientId) : null;
    if (raw === null) throw new AppError('not_found', { message: 'No such client.' });
    return JSON.parse(raw) as StoredOpClient;
  }

  /** Exact absolute URLs without fragment or credentials; https in production (http also on loopback hosts elsewhere). */
  private checkUris(redirectUris: string[], postLogout: string[], backchannel?: string): void {
    const problems: Array<{ path: string; message: string }> = [];
    const check = (path: string, list: string[]): void => {
      list.forEach((value, i) => {
        let url: URL | null = null;
        try {
          url = new URL(value);
        } catch {
          url = null;
        }
        const httpAllowed = this.deps.config.env !== 'production';
        if (!url || (url.protocol !== 'https:' && !(httpAllowed && url.protocol === 'http:'))) problems.push({ path: `${path}.${i}`, message: httpAllowed ? 'must be an http(s) URL' : 'must be an https URL' });
        else if (url.hash || value.includes('#')) problems.push({ path: `${path}.${i}`, message: 'must not have a fragment' });
        else if (url.username || url.password) problems.push({ path: `${path}.${i}`, message: 'must not carry credentials' });
      });
    };
    check('redirectUris', redirectUris);
    check('postLogoutRedirectUris', postLogout);
    if (backchannel !== undefined) {
      check('backchannelLogoutUri', [backchannel]);
      // The receiver is reached with a POST from the gateway (§12 outbound policy applies at delivery).
      const last = problems.at(-1);
      if (last?.path === 'backchannelLogoutUri.0') last.path = 'backchannelLogoutUri';
    }
    if (problems.length) throw new AppError('validation_failed', { details: problems, detail: 'OP client URIs invalid' });
  }

  private view(c: StoredOpClient): OpClientView {
    return {
      clientId: c.client_id,
      name: c.name,
      source: 'api',
      readOnly: false,
      redirectUris: c.redirect_uris,
      postLogoutRedirectUris: c.post_logout_redirect_uris,
      backchannelLogoutUri: c.backchannel_logout_uri ?? null,
      tokenEndpointAuthMethod: c.token_endpoint_auth_method,
      grantTypes: ['authorization_code', 'refresh_token'],
      createdAt: new Date(c.createdAt).toISOString(),
      updatedAt: new Date(c.updatedAt).toISOString(),
    };
  }
}
