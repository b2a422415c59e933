/**
 * Worker thread of the SAML response pool: builds and signs responses (xml-crypto, as the tests and the
 * demo IdP do) so both cores sign while a pool is prepared.
 */
import { parentPort } from 'node:worker_threads';
import { buildSamlResponseXml, signSamlResponse, type SamlResponseSpec, type SigningOptions } from '../../src/demo/saml-response.js';

export interface SignJob {
  specs: SamlResponseSpec[];
  privateKey: string;
  certificate: string;
  sign: SigningOptions['sign'];
}

parentPort!.on('message', (job: SignJob) => {
  const out = job.specs.map((spec) =>
    Buffer.from(signSamlResponse(buildSamlResponseXml(spec), { privateKey: job.privateKey, certificate: job.certificate, sign: job.sign }), 'utf8').toString('base64'),
  );
  parentPort!.postMessage(out);
});
