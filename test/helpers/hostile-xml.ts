import { SAML_MESSAGE_LIMITS, type XmlShapeLimits } from '../../src/sso/saml/xml-shape.js';

/**
 * Hostile XML shapes that stay inside the gateway's body limits but used to cost far more CPU than a
 * valid login: deep nesting, a namespace declaration on every level, wide documents, many attributes,
 * huge text. Used by the ACS/SLO tests, the fuzz test and the benchmark's hostile-input scenario.
 */

const PROTOCOL = 'urn:oasis:names:tc:SAML:2.0:protocol';
const ASSERTION = 'urn:oasis:names:tc:SAML:2.0:assertion';

/** `depth` nested elements, each declaring a fresh namespace prefix (the quadratic c14n / parser shape). */
export function nestedNamespaces(depth: number, prefix = 'n'): { open: string; close: string } {
  let open = '';
  let close = '';
  for (let i = 0; i < depth; i++) {
    open += `<${prefix}${i}:e xmlns:${prefix}${i}="urn:x:${i}">`;
    close = `</${prefix}${i}:e>${close}`;
  }
  return { open, close };
}

/** Filler that fits `bytes`: as many nested namespace-declaring elements as fit. */
export function deepNamespaceFiller(bytes: number): string {
  const per = '<n0000:e xmlns:n0000="urn:x:0000"></n0000:e>'.length + 4;
  const { open, close } = nestedNamespaces(Math.max(1, Math.floor(bytes / per)));
  return open + close;
}

/** Flat filler: many empty sibling elements. */
export function wideFiller(bytes: number): string {
  return '<x/>'.repeat(Math.max(1, Math.floor(bytes / 4)));
}

/** One element with as many attributes as fit. */
export function manyAttributesFiller(bytes: number): string {
  const n = Math.max(1, Math.floor(bytes / 12));
  let attrs = '';
  for (let i = 0; i < n; i++) attrs += ` a${i.toString(36)}="1"`;
  return `<x${attrs}/>`;
}

/** Nested elements without any namespace declaration (depth only). */
export function deepPlainFiller(bytes: number): string {
  const n = Math.max(1, Math.floor(bytes / 7));
  return '<a>'.repeat(n) + '</a>'.repeat(n);
}

/** A Response-shaped document (the right root, an Issuer) with `filler` inside. */
export function hostileResponse(filler: string, issuer = 'https://idp.attacker.test'): string {
  return (
    `<samlp:Response xmlns:samlp="${PROTOCOL}" xmlns:saml="${ASSERTION}" ID="_r" Version="2.0" IssueInstant="2026-01-01T00:00:00Z">` +
    `<saml:Issuer>${issuer}</saml:Issuer>${filler}</samlp:Response>`
  );
}

/**
 * An enveloped signature that looks right (exc-c14n, RSA-SHA256, one Reference to `#id`) but whose
 * digest and value are garbage: a verifier that canonicalizes the referenced element before checking
 * the SignatureValue pays for the whole element.
 */
export function fakeSignature(id: string): string {
  const ds = 'http://www.w3.org/2000/09/xmldsig#';
  const c14n = 'http://www.w3.org/2001/10/xml-exc-c14n#';
  return (
    `<ds:Signature xmlns:ds="${ds}"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="${c14n}"/>` +
    `<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="#${id}"><ds:Transforms>` +
    `<ds:Transform Algorithm="${ds}enveloped-signature"/><ds:Transform Algorithm="${c14n}"/></ds:Transforms>` +
    `<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>${'A'.repeat(44)}</ds:DigestValue></ds:Reference>` +
    `</ds:SignedInfo><ds:SignatureValue>${'A'.repeat(344)}</ds:SignatureValue></ds:Signature>`
  );
}

/** A LogoutRequest-shaped document naming `issuer` (a registered IdP) with `filler` inside, enveloped-"signed" when asked. */
export function hostileLogoutRequest(filler: string, issuer: string, withSignature = true): string {
  return (
    `<samlp:LogoutRequest xmlns:samlp="${PROTOCOL}" xmlns:saml="${ASSERTION}" ID="_l" Version="2.0" IssueInstant="2026-01-01T00:00:00Z">` +
    `<saml:Issuer>${issuer}</saml:Issuer>${withSignature ? fakeSignature('_l') : ''}${filler}<saml:NameID>x</saml:NameID></samlp:LogoutRequest>`
  );
}

/** Puts `filler` into the (signed) assertion of a signed response, after its Subject: the digest then fails, but only after c14n. */
export function injectIntoAssertion(responseXml: string, filler: string): string {
  const at = responseXml.indexOf('</saml:Subject>');
  if (at < 0) throw new Error('no Subject in the response');
  const end = at + '</saml:Subject>'.length;
  return responseXml.slice(0, end) + filler + responseXml.slice(end);
}

/**
 * The costliest shape inside the SAML structural limits: chains nested close to the depth limit whose
 * every element declares as many namespaces as an element may carry (until the document's budget of
 * declarations is spent), with the rest of the node budget as leaves at the bottom inheriting them
 * all (parsing and c14n look up and carry what is in scope). `room` leaves levels and nodes for the
 * message around the filler.
 */
export function limitHuggingFiller(bytes: number, limits: XmlShapeLimits = SAML_MESSAGE_LIMITS, room = { depth: 4, nodes: 60, attributes: 120 }): string {
  const depth = limits.maxDepth - room.depth;
  const perElement = limits.maxAttributesPerElement - 1;
  let attributes = limits.maxAttributes - room.attributes;
  let namespaces = Math.min(limits.maxNamespaceDeclarations - 12, Math.floor(attributes / 2));
  let nodes = limits.maxNodes - room.nodes;
  let out = '';
  for (let chain = 0; nodes > depth && out.length < bytes; chain++) {
    let open = '';
    let close = '';
    for (let d = 0; d < depth; d++) {
      const k = Math.max(0, Math.min(perElement, namespaces, attributes));
      let attrs = '';
      for (let i = 0; i < k; i++) attrs += ` xmlns:p${chain}_${d}_${i}="u:${i}"`;
      namespaces -= k;
      attributes -= k;
      open += `<p${chain}_${d}_0:e${attrs}>`;
      close = `</p${chain}_${d}_0:e>${close}`;
    }
    nodes -= depth;
    // Leaves: short attributes while the budget lasts, then bare elements.
    let leaves = '';
    const leafCount = namespaces > 0 ? Math.floor(nodes / 4) : nodes;
    for (let i = 0; i < leafCount && out.length + open.length + leaves.length + close.length < bytes - 200; i++) {
      const k = Math.max(0, Math.min(perElement, attributes));
      let attrs = '';
      for (let a = 0; a < k; a++) attrs += ` a${a}="1"`;
      attributes -= k;
      leaves += `<p${chain}_0_0:l${attrs}/>`;
    }
    nodes -= leafCount;
    out += open + leaves + close;
  }
  return out;
}

/** The named hostile fillers, each sized to `bytes`. */
export const HOSTILE_FILLERS: Record<string, (bytes: number) => string> = {
  'deep namespaces': deepNamespaceFiller,
  'deep plain': deepPlainFiller,
  wide: wideFiller,
  'many attributes': manyAttributesFiller,
  'huge text': (bytes) => `<x>${'A'.repeat(bytes)}</x>`,
  'at the limits': (bytes) => limitHuggingFiller(bytes),
};
