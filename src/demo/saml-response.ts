import { randomBytes } from 'node:crypto';
import { SignedXml } from 'xml-crypto';
import { xmlEscape } from '../sso/saml/xml.js';
import '../sso/saml/xml-crypto-sha384.js';

/**
 * Builds and signs SAML 2.0 Responses: used by the demo IdP (never in production) and by the tests.
 * Every field can be overridden or left out (`null`) so tests can build each malformed shape.
 */
export interface SamlResponseSpec {
  issuer: string;
  /** null leaves the attribute out. */
  destination: string | null;
  inResponseTo: string | null;
  recipient: string | null;
  audience: string | null;
  nameId: string;
  now: number;
  /** Defaults to 5 minutes. */
  validForMs?: number;
  notBefore?: number | null;
  notOnOrAfter?: number | null;
  subjectNotOnOrAfter?: number | null;
  sessionNotOnOrAfter?: number;
  sessionIndex?: string;
  responseId?: string;
  assertionId?: string;
  statusCode?: string;
  confirmationMethod?: string;
  attributes?: Record<string, string>;
}

export const SIG_RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
export const SIG_RSA_SHA1 = 'http://www.w3.org/2000/09/xmldsig#rsa-sha1';
export const DIGEST_SHA256 = 'http://www.w3.org/2001/04/xmlenc#sha256';
export const DIGEST_SHA1 = 'http://www.w3.org/2000/09/xmldsig#sha1';
export const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
export const ENVELOPED_SIGNATURE = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';

export { xmlEscape };

export const newSamlId = (): string => `_${randomBytes(16).toString('hex')}`;
const iso = (ms: number): string => new Date(ms).toISOString();

export function buildSamlResponseXml(spec: SamlResponseSpec): string {
  const validFor = spec.validForMs ?? 5 * 60_000;
  const responseId = spec.responseId ?? newSamlId();
  const assertionId = spec.assertionId ?? newSamlId();
  const a = (name: string, value: string | null | undefined): string => (value === null || value === undefined ? '' : ` ${name}="${xmlEscape(value)}"`);
  const t = (ms: number | null | undefined, fallback: number): string | null => (ms === null ? null : iso(ms ?? fallback));
  const notBefore = t(spec.notBefore, spec.now - 30_000);
  const notOnOrAfter = t(spec.notOnOrAfter, spec.now + validFor);
  const subjectNotOnOrAfter = t(spec.subjectNotOnOrAfter, spec.now + validFor);
  const attributes = Object.entries(spec.attributes ?? {})
    .map(([k, v]) => `<saml:Attribute Name="${xmlEscape(k)}"><saml:AttributeValue>${xmlEscape(v)}</saml:AttributeValue></saml:Attribute>`)
    .join('');
  return (
    `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"` +
    ` ID="${responseId}" Version="2.0" IssueInstant="${iso(spec.now)}"${a('Destination', spec.destination)}${a('InResponseTo', spec.inResponseTo)}>` +
    `<saml:Issuer>${xmlEscape(spec.issuer)}</saml:Issuer>` +
    `<samlp:Status><samlp:StatusCode Value="${spec.statusCode ?? 'urn:oasis:names:tc:SAML:2.0:status:Success'}"/></samlp:Status>` +
    `<saml:Assertion ID="${assertionId}" Version="2.0" IssueInstant="${iso(spec.now)}">` +
    `<saml:Issuer>${xmlEscape(spec.issuer)}</saml:Issuer>` +
    `<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified">${xmlEscape(spec.nameId)}</saml:NameID>` +
    `<saml:SubjectConfirmation Method="${spec.confirmationMethod ?? 'urn:oasis:names:tc:SAML:2.0:cm:bearer'}">` +
    `<saml:SubjectConfirmationData${a('NotOnOrAfter', subjectNotOnOrAfter)}${a('Recipient', spec.recipient)}${a('InResponseTo', spec.inResponseTo)}/>` +
    `</saml:SubjectConfirmation></saml:Subject>` +
    `<saml:Conditions${a('NotBefore', notBefore)}${a('NotOnOrAfter', notOnOrAfter)}>` +
    (spec.audience === null ? '' : `<saml:AudienceRestriction><saml:Audience>${xmlEscape(spec.audience)}</saml:Audience></saml:AudienceRestriction>`) +
    `</saml:Conditions>` +
    `<saml:AuthnStatement AuthnInstant="${iso(spec.now)}"${a('SessionIndex', spec.sessionIndex ?? assertionId)}${a('SessionNotOnOrAfter', spec.sessionNotOnOrAfter === undefined ? undefined : iso(spec.sessionNotOnOrAfter))}>` +
    `<saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext>` +
    `</saml:AuthnStatement>` +
    (attributes ? `<saml:AttributeStatement>${attributes}</saml:AttributeStatement>` : '') +
    `</saml:Assertion></samlp:Response>`
  );
}

export interface SigningOptions {
  privateKey: string;
  certificate: string;
  /** What carries an enveloped signature. */
  sign: 'assertion' | 'response' | 'both';
  signatureAlgorithm?: string;
  digestAlgorithm?: string;
}

function signElement(xml: string, localName: 'Assertion' | 'Response', options: SigningOptions): string {
  const sig = new SignedXml({
    privateKey: options.privateKey,
    publicCert: options.certificate,
    signatureAlgorithm: options.signatureAlgorithm ?? SIG_RSA_SHA256,
    canonicalizationAlgorithm: EXC_C14N,
  });
  const xpath = `//*[local-name(.)='${localName}']`;
  sig.addReference({
    xpath,
    digestAlgorithm: options.digestAlgorithm ?? DIGEST_SHA256,
    transforms: [ENVELOPED_SIGNATURE, EXC_C14N],
  });
  sig.computeSignature(xml, {
    prefix: 'ds',
    location: { reference: `${xpath}/*[local-name(.)='Issuer']`, action: 'after' },
  });
  return sig.getSignedXml();
}

/** Signs the assertion, the response, or both (assertion first, so the outer signature covers it). */
export function signSamlResponse(xml: string, options: SigningOptions): string {
  let out = xml;
  if (options.sign === 'assertion' || options.sign === 'both') out = signElement(out, 'Assertion', options);
  if (options.sign === 'response' || options.sign === 'both') out = signElement(out, 'Response', options);
  return out;
}
