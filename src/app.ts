import express, { type Express, type Request, type Response } from 'express';
import { demoOAuthIdpRouter, type DemoOAuthClient } from './demo/oauth-idp.js';
import { cspSourceOf, demoSamlIdpRouter, type DemoIdpUser } from './demo/saml-idp.js';
import { errorHandler, notFoundHandler } from './http/error-handler.js';
import { readCookie } from './http/cookies.js';
import { requestContext, securityHeaders } from './http/request-context.js';
import { adminRouter } from './http/routes/admin/index.js';
import { interactionRoutes } from './provider/interaction-routes.js';
import { mobileTokenGuard } from './provider/mobile-token-guard.js';
import { OP_PATH } from './provider/provider.js';
import { publicRouteRule, rateLimit } from './http/rate-limit.js';
import { consoleRoutes } from './http/routes/console-routes.js';
import { consoleStaticRoutes } from './http/routes/console-static.js';
import { healthRoutes } from './http/routes/health-routes.js';
import { logoutRoutes } from './http/routes/logout-routes.js';
import { mobileRoutes } from './http/routes/mobile-routes.js';
import { passwordRoutes } from './http/routes/password-routes.js';
import { serviceRoutes } from './http/routes/service-routes.js';
import { sessionRoutes } from './http/routes/session-routes.js';
import { ssoRoutes } from './http/routes/sso-routes.js';
import { esc, page } from './http/views.js';
import { scimRoutes } from './scim/scim-routes.js';
import { buildServices, type AppDeps, type Services } from './services.js';

export interface DemoOptions {
  samlIdp: { privateKey: string; certificate: string; users: readonly DemoIdpUser[] };
  oauthIdp?: { users: readonly DemoIdpUser[]; client: DemoOAuthClient };
}

export interface CreatedApp {
  app: Express;
  services: Services;
}

/** The Express app of the gateway. Tests import this; only main.ts listens. */
export function createApp(deps: AppDeps, demo?: DemoOptions): CreatedApp {
  const services = buildServices(deps);
  const { config } = services;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy);
  app.set('query parser', 'simple');

  app.use(requestContext(services.logger, services.metrics));
  app.use(securityHeaders);
  app.use(healthRoutes(services.store, services.metrics, config.metrics));
  // O-1: the OpenID Provider, early (its token endpoint is the hottest route). Our interaction pages
  // first; everything else under /oidc is oidc-provider's.
  app.use(interactionRoutes(services, services.provider));
  app.use(mobileTokenGuard(services, services.provider));
  // Each authorization request makes oidc-provider store an interaction: a per-client budget, as /d/login has.
  app.use(`${OP_PATH}/auth`, rateLimit(services, publicRouteRule(config, 'op-authorize')));
  app.use(OP_PATH, services.provider.callback());
  app.use(ssoRoutes(services));
  app.use(passwordRoutes(services));
  app.use(serviceRoutes(services));
  app.use(sessionRoutes(services));
  app.use(logoutRoutes(services));
  app.use(consoleRoutes(services));
  app.use(mobileRoutes(services));
  app.use('/admin/v1', adminRouter(services));
  app.use(scimRoutes(services));
  // The admin console's static files, under their own CSP (not browserRoute's pages).
  app.use(consoleStaticRoutes(config));

  const demoMounted = Boolean(demo && config.demo.enabled && config.env !== 'production');
  if (demo && demoMounted) {
    const opRedirects = config.oidc.clients.flatMap((c) => c.redirect_uris).map(cspSourceOf);
    const landingsAfterAcs = async (domain: string): Promise<string[]> => {
      const tenant = await services.tenants.find(domain);
      const policy = tenant ? services.accessUrlPolicy(tenant) : undefined;
      const targets = policy ? [...policy.allowedOrigins, policy.defaultServiceUrl === undefined ? null : cspSourceOf(policy.defaultServiceUrl)] : [];
      return [...targets, ...opRedirects].filter((source): source is string => source !== null);
    };
    app.use(demoSamlIdpRouter({ publicUrl: config.publicUrl, clock: services.clock, landingsAfterAcs, ...demo.samlIdp }));
    if (demo.oauthIdp) app.use(demoOAuthIdpRouter({ publicUrl: config.publicUrl, store: services.store, ...demo.oauthIdp }));
    // The demo's default service URL: shows who is signed in.
    app.get('/welcome', async (req: Request, res: Response) => {
      const session = await services.sessions.find(readCookie(req, config.session.cookieName));
      res.type('html').send(
        page(
          'Welcome',
          session
            ? `<h1>Signed in</h1><p>You are <code>${esc(session.account)}</code> of <code>${esc(session.domain)}</code>, signed in with ${esc(session.authMethod)}.</p><p><a class="button" href="/d/logout">Sign out</a></p>`
            : `<h1>Not signed in</h1><p><a class="button" href="/d/login/demo.example">Sign in to demo.example (SAML)</a></p><p><a class="button" href="/d/login/oauth.example">Sign in to oauth.example (OAuth)</a></p>`,
        ),
      );
    });
  }

  app.use(notFoundHandler);
  app.use(errorHandler());
  return { app, services };
}
