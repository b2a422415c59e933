/**
 * Floor of `POST /acs/{domain}` (docs/spec.md §13): raw `@node-saml/node-saml` `validatePostResponseAsync` in a
 * minimal Express host, same process count as the gateway, fed the very same signed responses.
 *
 * node-saml runs as a standalone SP would configure it: the IdP certificate and issuer, the SP entity ID
 * as audience, the ACS URL, signed assertions required, 180 s clock skew. It cannot check InResponseTo
 * against a login transaction without shared state (its cache is per process), so that check is off
 * (`validateInResponseTo: never`), and it has no replay cache, no member lookup and no session: this is
 * the cost of parsing and verifying the XML, the part every SAML SP pays. Success answers 303 to
 * /welcome (as the gateway answers 303 to the accessUrl), a refusal 403.
 *
 * Env: BENCH_PORT, BENCH_PROCESSES, BENCH_SAML_SP (JSON: idpCert, idpIssuer, spEntityId, acsUrl).
 */
import { SAML, ValidateInResponseTo } from '@node-saml/node-saml';
import express from 'express';
import { serve } from './serve.js';

interface SpSettings {
  idpCert: string;
  idpIssuer: string;
  spEntityId: string;
  acsUrl: string;
}

const sp = JSON.parse(process.env.BENCH_SAML_SP ?? '{}') as SpSettings;
if (!sp.idpCert || !sp.acsUrl) throw new Error('BENCH_SAML_SP must name idpCert, idpIssuer, spEntityId and acsUrl');

await serve({
  build: () => {
    const saml = new SAML({
      idpCert: sp.idpCert,
      idpIssuer: sp.idpIssuer,
      issuer: sp.spEntityId,
      audience: sp.spEntityId,
      callbackUrl: sp.acsUrl,
      wantAssertionsSigned: true,
      wantAuthnResponseSigned: false,
      acceptedClockSkewMs: 180_000,
      validateInResponseTo: ValidateInResponseTo.never,
    });
    const app = express();
    app.disable('x-powered-by');
    app.post('/acs', express.urlencoded({ extended: false, limit: '256kb' }), async (req, res) => {
      const body = req.body as Record<string, string>;
      try {
        const { profile } = await saml.validatePostResponseAsync({ SAMLResponse: body.SAMLResponse ?? '' });
        if (!profile?.nameID) throw new Error('no NameID');
        res.redirect(303, '/welcome');
      } catch (err) {
        res.status(403).type('text').send(`refused: ${(err as Error).message}`);
      }
    });
    return app;
  },
});
