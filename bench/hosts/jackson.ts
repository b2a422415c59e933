/**
 * Peer of `POST /acs/{domain}` (docs/spec.md §13): BoxyHQ SAML Jackson (`@boxyhq/saml-jackson`, the library
 * behind Ory Polis) embedded in a minimal Express host, on the same Redis (engine `redis`), with one SAML
 * connection for the same IdP certificate as the gateway's tenant. Its SP-initiated flow is the
 * counterpart of ours:
 *
 *   GET  /login           oauthController.authorize (tenant + product) → 302 to the IdP with a
 *                         SAMLRequest and Jackson's own RelayState (a session in Redis)
 *   POST /api/oauth/saml  oauthController.samlResponse: session lookup, InResponseTo, signature,
 *                         audience, times → an authorization code stored in Redis → 302 to the
 *                         app's redirect URL with `code=` (Jackson's own Next.js route answers 302 to
 *                         whatever redirect_url it returns; this host answers a redirect that carries
 *                         `error=` with 403 instead, so a refusal shows in the status histogram)
 *
 * Jackson's Redis engine has no key prefix, so its client is wrapped to prefix every key it touches
 * (BENCH_JACKSON.keyPrefix): the run deletes its prefix at the end like every other bench key. A command
 * the wrapper does not know throws rather than write outside the prefix. Analytics are off
 * (`noAnalytics`, DO_NOT_TRACK): nothing leaves the machine. The SP certificate is given (`certs`), so
 * Jackson does not generate one.
 *
 * Env: BENCH_PORT, BENCH_PROCESSES, BENCH_JACKSON (JSON, see JacksonHostSettings).
 */
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import type { controllers as createControllers, IOAuthController, JacksonOption, SAMLResponsePayload } from '@boxyhq/saml-jackson';
import express from 'express';
import { serve } from './serve.js';

export interface JacksonHostSettings {
  redisUrl: string;
  keyPrefix: string;
  /** Jackson's externalUrl: http://127.0.0.1:<port>. */
  externalUrl: string;
  samlAudience: string;
  idpEntityId: string;
  idpSsoUrl: string;
  /** PEM. */
  idpCertificate: string;
  spCertificate: string;
  spPrivateKey: string;
  tenant: string;
  product: string;
  /** Where a successful login sends the browser (with code=). */
  appRedirectUrl: string;
}

export const JACKSON_SAML_PATH = '/api/oauth/saml';

const settings = JSON.parse(process.env.BENCH_JACKSON ?? '{}') as JacksonHostSettings;
if (!settings.redisUrl || !settings.keyPrefix) throw new Error('BENCH_JACKSON must name redisUrl, keyPrefix …');

// ---- every Redis key Jackson writes goes under the run's prefix ---------------------------------
const KEY_FIRST = new Set(['get', 'set', 'expire', 'del', 'sAdd', 'sRem', 'sMembers', 'zAdd', 'zRange', 'ZREM', 'zScanIterator']);
const PASS_THROUGH = new Set(['connect', 'quit', 'disconnect', 'exec', 'on', 'once', 'off', 'emit', 'removeListener', 'addListener']);

function prefixed<T extends object>(target: T, prefix: string): T {
  return new Proxy(target, {
    get(t, prop, receiver: unknown) {
      const value: unknown = Reflect.get(t, prop, t);
      if (typeof prop !== 'string' || typeof value !== 'function') return value;
      const fn = value as (...args: unknown[]) => unknown;
      if (prop === 'multi') return (...args: unknown[]) => prefixed(fn.apply(t, args) as object, prefix);
      if (prop === 'MGET') return (keys: string[]) => fn.call(t, keys.map((k) => prefix + k));
      if (KEY_FIRST.has(prop)) {
        return (key: string, ...rest: unknown[]) => {
          const out = fn.call(t, prefix + key, ...rest);
          return out === t ? receiver : out; // MULTI chains return the multi itself
        };
      }
      if (PASS_THROUGH.has(prop)) return fn.bind(t);
      throw new Error(`jackson host: Redis command ${prop} is not key-prefixed (add it to bench/hosts/jackson.ts)`);
    },
  });
}

const require = createRequire(import.meta.url);
const redisEngine = require('@boxyhq/saml-jackson/dist/db/redis.js') as { default: { new: (o: unknown) => Promise<{ client: object }> } };
const originalNew = redisEngine.default.new;
redisEngine.default.new = async (options: unknown) => {
  const engine = await originalNew(options);
  engine.client = prefixed(engine.client, settings.keyPrefix);
  return engine;
};

// ---- Jackson ------------------------------------------------------------------------------------
const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const pemBody = (pem: string): string => pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');

const options: JacksonOption = {
  externalUrl: settings.externalUrl,
  samlPath: JACKSON_SAML_PATH,
  samlAudience: settings.samlAudience,
  db: { engine: 'redis', url: settings.redisUrl, ttl: 1800 },
  noAnalytics: true,
  certs: { publicKey: b64(settings.spCertificate), privateKey: b64(settings.spPrivateKey) },
  logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
};

type Controllers = Awaited<ReturnType<typeof createControllers>>;
let controllers: Promise<Controllers> | undefined;
const jackson = (): Promise<Controllers> => {
  controllers ??= import('@boxyhq/saml-jackson').then((m) => m.controllers(options));
  return controllers;
};

function idpMetadataXml(): string {
  return (
    `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="${settings.idpEntityId}">` +
    `<md:IDPSSODescriptor WantAuthnRequestsSigned="false" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">` +
    `<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>${pemBody(settings.idpCertificate)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>` +
    `<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified</md:NameIDFormat>` +
    `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${settings.idpSsoUrl}"/>` +
    `</md:IDPSSODescriptor></md:EntityDescriptor>`
  );
}

await serve({
  setupOnce: async () => {
    const { connectionAPIController } = await jackson();
    await connectionAPIController.createSAMLConnection({
      rawMetadata: idpMetadataXml(),
      defaultRedirectUrl: settings.appRedirectUrl,
      redirectUrl: JSON.stringify([settings.appRedirectUrl]),
      tenant: settings.tenant,
      product: settings.product,
      name: 'bench',
      description: 'idp-bridge bench peer',
    });
  },
  build: async () => {
    const { oauthController } = await jackson();
    const oauth: IOAuthController = oauthController;
    const app = express();
    app.disable('x-powered-by');
    app.get('/login', async (_req, res) => {
      const out = await oauth.authorize({
        response_type: 'code',
        client_id: 'dummy',
        tenant: settings.tenant,
        product: settings.product,
        redirect_uri: settings.appRedirectUrl,
        state: randomBytes(16).toString('hex'),
      } as Parameters<IOAuthController['authorize']>[0]);
      if (!out.redirect_url || out.redirect_url.includes('error=')) {
        res.status(500).type('text').send(`authorize failed: ${out.redirect_url ?? 'no redirect'}`);
        return;
      }
      res.redirect(302, out.redirect_url);
    });
    app.post(JACKSON_SAML_PATH, express.urlencoded({ extended: false, limit: '256kb' }), async (req, res) => {
      try {
        const { redirect_url } = await oauth.samlResponse(req.body as SAMLResponsePayload);
        if (!redirect_url || !new URL(redirect_url).searchParams.has('code')) {
          res.status(403).type('text').send(`refused: ${redirect_url ?? 'no redirect'}`);
          return;
        }
        res.redirect(302, redirect_url);
      } catch (err) {
        const status = (err as { statusCode?: number }).statusCode ?? 500;
        res.status(status).type('text').send(`refused: ${(err as Error).message}`);
      }
    });
    return app;
  },
  close: async () => {
    if (controllers) await (await controllers).close();
  },
});
