/**
 * The part of oidc-provider v9 idp-bridge and its tests use. The package ships no types and
 * @types/oidc-provider follows an older major, so we declare what we call.
 */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  export interface InteractionDetails {
    uid: string;
    prompt: { name: string; reasons: string[]; details: Record<string, unknown> };
    params: Record<string, unknown> & { client_id: string; scope?: string };
    session?: { accountId?: string };
  }

  export interface InteractionResults {
    login?: { accountId: string; [key: string]: unknown };
    consent?: { grantId?: string };
    error?: string;
    error_description?: string;
    [key: string]: unknown;
  }

  export interface Grant {
    addOIDCScope(scope: string): void;
    addOIDCClaims(claims: string[]): void;
    addResourceScope(resource: string, scope: string): void;
    save(): Promise<string>;
  }

  export interface KoaContextLike {
    path: string;
    method: string;
    status: number;
    body: unknown;
    headers: Record<string, string | string[] | undefined>;
    req: IncomingMessage;
    append(field: string, value: string): void;
    oidc?: { params?: Record<string, unknown>; client?: { clientId: string }; entities?: Record<string, unknown> };
  }

  export interface Account {
    accountId: string;
    claims(use: string, scope: string, claims: unknown, rejected: string[]): Promise<Record<string, unknown>> | Record<string, unknown>;
  }

  /** A parsed client (the metadata oidc-provider uses for back-channel logout). */
  export interface ClientModel {
    readonly clientId: string;
    readonly backchannelLogoutUri?: string;
    readonly backchannelLogoutSessionRequired?: boolean;
    backchannelLogout(sub: string, sid: string | undefined): Promise<void>;
  }

  /** An ID token (or, issued with `use: 'logout'`, a logout token) being built. */
  export interface IdTokenModel {
    mask: Record<string, unknown>;
    set(claim: string, value: unknown): void;
    issue(options: { use: 'idtoken' | 'logout' | 'userinfo' }): Promise<string>;
  }

  export class Provider {
    constructor(issuer: string, configuration?: Record<string, unknown>);
    readonly issuer: string;
    readonly Grant: (new (properties: { accountId: string; clientId: string }) => Grant) & { find(id: string): Promise<Grant | undefined> };
    readonly AuthorizationCode: { find(code: string): Promise<{ accountId: string; grantId: string; clientId: string } | undefined> };
    readonly RefreshToken: { find(token: string): Promise<{ accountId: string; grantId: string; clientId: string; iat?: number; exp?: number; expiresWithSession?: boolean } | undefined> };
    readonly Client: { prototype: ClientModel; find(id: string): Promise<ClientModel | undefined> };
    readonly IdToken: new (available: Record<string, unknown>, options: { client: ClientModel; ctx: undefined }) => IdTokenModel;
    proxy: boolean;
    use(middleware: (ctx: KoaContextLike, next: () => Promise<void>) => Promise<void>): void;
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>;
    interactionFinished(req: IncomingMessage, res: ServerResponse, result: InteractionResults, options?: { mergeWithLastSubmission?: boolean }): Promise<void>;
    on(event: string, listener: (...args: unknown[]) => void): this;
  }

  export default Provider;
}
