import { MultiSamlStrategy, type Profile } from '@node-saml/passport-saml';
import type { Request, Response } from 'express';
import { Passport, type Strategy } from 'passport';
import type { Tenant } from '../domain/tenant.js';
import { AppError } from '../errors/index.js';
import { buildSamlOptions, type SecondGateOptionsHook, type SpContext } from '../sso/saml/options.js';

const STRATEGY = 'saml-acs';

const asError = (e: unknown, fallback: string): Error => (e instanceof Error ? e : new Error(typeof e === 'string' ? e : fallback));

/** What the strict verifier (acs.ts) accepted: the second gate must agree on each. */
export interface VerifiedIdentity {
  nameId: string;
  assertionId: string;
  issuer: string;
  /**
   * The assertion came encrypted (acs.ts): the SP key that opened it, and the response to give node-saml
   * instead of the posted one when its key transport was re-wrapped for xml-encryption (else null).
   */
  encryption?: { keyId: 'current' | 'next'; secondGateXml: string | null };
}

export type SamlSecondGate = (req: Request, res: Response, tenant: Tenant, verified: VerifiedIdentity) => Promise<void>;

/**
 * The one seam where passport runs: @node-saml/passport-saml's MultiSamlStrategy as the ACS's second,
 * independent gate. The strict single-parse verifier (acs.ts) runs first, so every forged or
 * malformed response has been refused cheaply before node-saml sees anything; this gate then
 * validates the same posted response again with node-saml (signature by the tenant's registered
 * certificates, assertion signed, Issuer) and must reach the same identity: NameID, assertion ID,
 * issuer. An attacker has to beat two implementations. Per-tenant options come from the pure builder
 * (buildSamlOptions); time, InResponseTo and audience stay the strict verifier's (injected clock, the
 * Redis transaction), so node-saml's versions of them are off there. Passport is wrapped into a
 * promise here, and no business logic runs in its verify callback.
 */
export function createSamlSecondGate(sp: SpContext, onResult: (result: 'agreed' | 'refused') => void, testOptionsHook?: SecondGateOptionsHook): SamlSecondGate {
  const passport = new Passport();
  const tenantOf = new WeakMap<Request, { tenant: Tenant; decryptionPvk?: string }>();
  // passport-saml's typings name Express 4's Request; the strategy runs on Express 5's unchanged.
  const strategy = new MultiSamlStrategy(
    {
      passReqToCallback: false,
      getSamlOptions: (req, done) => {
          const entry = tenantOf.get(req as unknown as Request);
          if (!entry) return done(new Error('second gate: no tenant on the request'));
          // node-saml takes one decryption key: the one that opened the assertion in the strict verifier.
          const options = { ...buildSamlOptions({ tenant: entry.tenant, sp }), ...(entry.decryptionPvk ? { decryptionPvk: entry.decryptionPvk } : {}) };
          done(null, testOptionsHook ? testOptionsHook(options, entry.tenant) : options);
        },
      },
      (profile: Profile | null, done: (err: Error | null, user?: Record<string, unknown>) => void) => done(null, profile ?? undefined),
      (_profile: Profile | null, done: (err: Error | null, user?: Record<string, unknown>) => void) => done(null),
  );
  passport.use(STRATEGY, strategy as unknown as Strategy);

  const authenticate = (req: Request, res: Response): Promise<Profile> =>
    new Promise((resolve, reject) => {
      const handler = passport.authenticate(STRATEGY, { session: false }, (err: unknown, user: Profile | false | undefined) => {
        if (err) reject(asError(err, 'passport-saml refused the response'));
        else if (!user) reject(new Error('node-saml accepted no user'));
        else resolve(user);
      }) as (req: Request, res: Response, next: (err?: unknown) => void) => void;
      handler(req, res, (err?: unknown) => reject(asError(err, 'passport ended without a result')));
    });

  return async (req, res, tenant, verified) => {
    let decryptionPvk: string | undefined;
    let request = req;
    if (verified.encryption) {
      decryptionPvk = sp.decryption?.find((k) => k.id === verified.encryption?.keyId)?.privateKey;
      // node-saml decrypts with xml-encryption, which reads rsa-oaep-mgf1p only (encrypted-assertion.ts,
      // nodeSamlResponse): for xmlenc11#rsa-oaep it is given the response with the key re-wrapped.
      const xml = verified.encryption.secondGateXml;
      if (xml !== null) request = Object.assign(Object.create(req) as Request, { body: { ...(req.body as object), SAMLResponse: Buffer.from(xml, 'utf8').toString('base64') } });
    }
    tenantOf.set(request, { tenant, decryptionPvk });
    let profile: Profile;
    try {
      profile = await authenticate(request, res);
    } catch (err) {
      onResult('refused');
      throw new AppError('saml_response_invalid', { reason: 'second_gate_refused', detail: `node-saml: ${err instanceof Error ? err.message : String(err)}` });
    }
    const assertionId = /^<[^>]*\sID="([^"]+)"/.exec(profile.getAssertionXml?.() ?? '')?.[1];
    const disagreement = [
      profile.nameID?.trim() !== verified.nameId && 'NameID',
      assertionId !== verified.assertionId && 'assertion ID',
      profile.issuer?.trim() !== verified.issuer && 'Issuer',
    ].filter(Boolean);
    if (disagreement.length) {
      onResult('refused');
      throw new AppError('saml_response_invalid', { reason: 'second_gate_disagrees', detail: `the two verifiers disagree on ${disagreement.join(', ')}` });
    }
    onResult('agreed');
  };
}
