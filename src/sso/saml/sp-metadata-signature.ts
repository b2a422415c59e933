import { createHash } from 'node:crypto';
import { SignedXml } from 'xml-crypto';
import type { Tenant } from '../../domain/tenant.js';
import type { SpContext, SpSigning } from './options.js';
import { buildSpMetadata } from './sp-metadata.js';

const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
const SHA256 = 'http://www.w3.org/2001/04/xmlenc#sha256';
const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
const ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';

/** Signed documents kept per signing key (the metadata of one tenant changes only with its settings): a few KB each. */
const CACHE_MAX = 2000;
const cache = new WeakMap<SpSigning, Map<string, string>>();

/**
 * Signs SP metadata with the SP's current signing key: an enveloped signature (RSA-SHA256, SHA-256
 * digest, exclusive c14n) as the first child of the EntityDescriptor (metadata schema, SAML metadata
 * §3.1), referencing it by an `ID` derived from the document, so the same metadata always gets the same
 * ID. No KeyInfo: an IdP checks metadata against a certificate it already trusts, never one the
 * document carries. The next certificate (published for a rollover) is listed in the metadata, but never
 * signs.
 */
export function signSpMetadata(xml: string, signing: SpSigning): string {
  let perKey = cache.get(signing);
  const hit = perKey?.get(xml);
  if (hit) return hit;
  const id = `_${createHash('sha256').update(xml).digest('hex').slice(0, 40)}`;
  const withId = xml.replace(/<md:EntityDescriptor /, `<md:EntityDescriptor ID="${id}" `);
  // The parsed key (a PEM string would be parsed again for every signature).
  const sig = new SignedXml({ privateKey: signing.key, signatureAlgorithm: RSA_SHA256, canonicalizationAlgorithm: EXC_C14N });
  sig.addReference({ xpath: '/*', digestAlgorithm: SHA256, transforms: [ENVELOPED, EXC_C14N] });
  sig.computeSignature(withId, { prefix: 'ds', location: { reference: '/*', action: 'prepend' } });
  const signed = sig.getSignedXml();
  if (!perKey) cache.set(signing, (perKey = new Map<string, string>()));
  // The oldest entry goes first (a Map iterates in insertion order): cycling through more tenants than
  // the cache holds costs one signature per request, never more.
  if (perKey.size >= CACHE_MAX) perKey.delete(perKey.keys().next().value!);
  perKey.set(xml, signed);
  return signed;
}

/** GET /saml/metadata/{domain}: the SP metadata, signed when the gateway has an SP signing key. */
export function servedSpMetadata(sp: SpContext, tenant: Tenant): string {
  const xml = buildSpMetadata(sp, tenant);
  return sp.signing ? signSpMetadata(xml, sp.signing) : xml;
}
