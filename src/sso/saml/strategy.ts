import { MultiSamlStrategy, type Profile } from '@node-saml/passport-saml';
import type { SamlConfig } from '@node-saml/node-saml';
import type { Strategy } from 'passport';
import { runStrategy, type StrategyOutcome } from '../../http/passport-seam.js';

/**
 * The one MultiSamlStrategy of the gateway. Tenant options come from the pure builder
 * (`buildSamlOptions`) and travel on the seam request; the verify callbacks only hand the verified
 * profile back — everything else happens in `acs.ts`.
 */
export function createSamlStrategy(): Strategy {
  return new MultiSamlStrategy(
    {
      passReqToCallback: true,
      getSamlOptions: (req, done) => done(null, (req as unknown as { strategyOptions: SamlConfig }).strategyOptions),
    },
    (_req, profile, done) => done(null, { profile }),
    (_req, profile, done) => done(null, { profile }),
  ) as unknown as Strategy;
}

/** Builds the IdP redirect URL of an AuthnRequest (S-7). */
export async function samlAuthorizeUrl(strategy: Strategy, options: SamlConfig, relayState: string): Promise<string> {
  const outcome = await runStrategy(strategy, { query: { RelayState: relayState }, body: {}, headers: {}, url: '/', strategyOptions: options });
  if (outcome.kind !== 'redirect') throw new Error(`SAML strategy did not redirect (${outcome.kind})`);
  return outcome.url;
}

/** Runs node-saml's signature validation of a posted response; returns the verified profile. */
export async function samlVerifyPostResponse(strategy: Strategy, options: SamlConfig, samlResponse: string): Promise<Profile> {
  const outcome: StrategyOutcome = await runStrategy(strategy, {
    query: {},
    body: { SAMLResponse: samlResponse },
    headers: {},
    url: '/',
    strategyOptions: options,
  });
  const profile = outcome.kind === 'success' ? (outcome.user as { profile?: Profile | null }).profile : null;
  if (!profile) throw new Error(`SAML response yielded no profile (${outcome.kind})`);
  return profile;
}
