/**
 * Structural limits for untrusted XML, checked by one linear pre-scan before any parser or
 * canonicalizer sees the bytes. Parsing and exclusive c14n cost grows with nesting depth times the
 * namespace declarations in scope, so a 256 KB document of nested namespace-declaring elements cost
 * seconds of CPU; real IdP messages are shallow and small in every one of these dimensions.
 */
export interface XmlShapeLimits {
  /** Deepest element nesting (the root is depth 1). */
  maxDepth: number;
  /** Elements, comments, processing instructions and CDATA sections in the whole document. */
  maxNodes: number;
  /** Namespace declarations (`xmlns`, `xmlns:p`) in the whole document. */
  maxNamespaceDeclarations: number;
  /** Attributes on one element, namespace declarations included. */
  maxAttributesPerElement: number;
  /** Attributes in the whole document, namespace declarations included (parsing cost follows them). */
  maxAttributes: number;
  /** Characters of one text node, CDATA section or attribute value. */
  maxTextLength: number;
  /**
   * Characters of the text of an xenc:CipherValue element (by local name): an encrypted assertion is
   * one base64 text node as large as the assertion. Absent: maxTextLength.
   */
  maxCipherValueLength?: number;
}

/**
 * SAML protocol messages (Response, LogoutRequest, LogoutResponse). What real IdPs send, measured or
 * taken from their published samples: an Entra ID response with 200 group claims is about 60 KB,
 * 8 levels deep and 300 elements; Okta declares xmlns:xs and xmlns:xsi and writes xsi:type on every
 * AttributeValue (three attributes per value: 200 groups are 600 attributes and 400 declarations); the deepest standard shapes (a signature's InclusiveNamespaces, an
 * EncryptedAssertion's key) are 8–10 levels; an X.509 certificate of 4096 bits is about 2 KB of
 * base64. Each limit leaves room for several times that, and no more: parsing cost grows with nodes
 * times the namespaces in scope, so these numbers are what bounds a hostile document's cost.
 */
export const SAML_MESSAGE_LIMITS: XmlShapeLimits = Object.freeze({
  maxDepth: 16,
  maxNodes: 1500,
  maxNamespaceDeclarations: 600,
  maxAttributesPerElement: 24,
  maxAttributes: 1200,
  maxTextLength: 65_536,
  // b-saml-enc: an encrypted 190 KB assertion (Entra ID with hundreds of groups), base64 with line breaks.
  maxCipherValueLength: 262_144,
});

/** IdP metadata uploaded or fetched by an administrator: larger (many certificates, endpoints), still bounded. */
export const METADATA_LIMITS: XmlShapeLimits = Object.freeze({
  maxDepth: 32,
  maxNodes: 20_000,
  maxNamespaceDeclarations: 5000,
  maxAttributesPerElement: 64,
  maxAttributes: 40_000,
  maxTextLength: 262_144,
});

/** Untrusted XML refused before or while parsing: the kind is the private reason (logs and audit). */
export class XmlRefused extends Error {
  constructor(
    readonly kind: 'doctype_refused' | 'xml_malformed' | 'xml_too_complex',
    message: string,
  ) {
    super(message);
    this.name = 'XmlRefused';
  }
}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);

/**
 * Walks the document once, counting what the limits name, and throws XmlRefused at the first
 * limit passed (or at a DOCTYPE, or at markup too broken to count). Linear in the input; no regular
 * expression that can backtrack. Well-formedness is left to the parser that runs afterwards.
 */
export function checkXmlShape(xml: string, limits: XmlShapeLimits): void {
  function tooComplex(what: string): never {
    throw new XmlRefused('xml_too_complex', what);
  }
  function malformed(what: string): never {
    throw new XmlRefused('xml_malformed', what);
  }
  let depth = 0;
  let nodes = 0;
  let namespaces = 0;
  let attributesInAll = 0;
  let i = 0;
  const n = xml.length;
  // The text right after a CipherValue start tag may be longer (maxCipherValueLength).
  let textLimit = limits.maxTextLength;
  while (i < n) {
    const lt = xml.indexOf('<', i);
    const textEnd = lt < 0 ? n : lt;
    if (textEnd - i > textLimit) tooComplex(`a text node of more than ${textLimit} characters`);
    textLimit = limits.maxTextLength;
    if (lt < 0) break;
    const next = xml.charCodeAt(lt + 1);
    let end: number;
    if (next === 0x2f /* / */) {
      end = xml.indexOf('>', lt + 2);
      if (end < 0) malformed('unterminated end tag');
      depth--;
    } else if (next === 0x3f /* ? */) {
      end = xml.indexOf('?>', lt + 2);
      if (end < 0) malformed('unterminated processing instruction');
      end += 1;
      if (++nodes > limits.maxNodes) tooComplex(`more than ${limits.maxNodes} nodes`);
    } else if (next === 0x21 /* ! */) {
      if (xml.startsWith('<!--', lt)) {
        end = xml.indexOf('-->', lt + 4);
        if (end < 0) malformed('unterminated comment');
        end += 2;
      } else if (xml.startsWith('<![CDATA[', lt)) {
        end = xml.indexOf(']]>', lt + 9);
        if (end < 0) malformed('unterminated CDATA section');
        if (end - lt - 9 > limits.maxTextLength) tooComplex(`a CDATA section of more than ${limits.maxTextLength} characters`);
        end += 2;
      } else {
        throw new XmlRefused('doctype_refused', 'DOCTYPE or other declaration');
      }
      if (++nodes > limits.maxNodes) tooComplex(`more than ${limits.maxNodes} nodes`);
    } else {
      // A start tag: its name, then attributes up to `>` or `/>`; quoted values may hold `>`.
      if (++nodes > limits.maxNodes) tooComplex(`more than ${limits.maxNodes} nodes`);
      let j = lt + 1;
      while (j < n && !WS.has(xml.charCodeAt(j)) && xml[j] !== '>' && xml[j] !== '/') j++;
      const elementName = xml.slice(lt + 1, j);
      let attributes = 0;
      let selfClosing = false;
      for (;;) {
        while (j < n && WS.has(xml.charCodeAt(j))) j++;
        if (j >= n) malformed('unterminated start tag');
        const c = xml[j];
        if (c === '>') break;
        if (c === '/') {
          if (xml[j + 1] !== '>') malformed('stray / in a start tag');
          selfClosing = true;
          j++;
          break;
        }
        const nameStart = j;
        while (j < n && xml[j] !== '=' && !WS.has(xml.charCodeAt(j)) && xml[j] !== '>' && xml[j] !== '/') j++;
        const name = xml.slice(nameStart, j);
        while (j < n && WS.has(xml.charCodeAt(j))) j++;
        if (xml[j] !== '=') malformed('attribute without a value');
        j++;
        while (j < n && WS.has(xml.charCodeAt(j))) j++;
        const quote = xml[j];
        if (quote !== '"' && quote !== "'") malformed('unquoted attribute value');
        const close = xml.indexOf(quote, j + 1);
        if (close < 0) malformed('unterminated attribute value');
        if (close - j - 1 > limits.maxTextLength) tooComplex(`an attribute value of more than ${limits.maxTextLength} characters`);
        j = close + 1;
        if (++attributes > limits.maxAttributesPerElement) tooComplex(`more than ${limits.maxAttributesPerElement} attributes on one element`);
        if (++attributesInAll > limits.maxAttributes) tooComplex(`more than ${limits.maxAttributes} attributes`);
        if ((name === 'xmlns' || name.startsWith('xmlns:')) && ++namespaces > limits.maxNamespaceDeclarations) {
          tooComplex(`more than ${limits.maxNamespaceDeclarations} namespace declarations`);
        }
      }
      end = j;
      if (limits.maxCipherValueLength && !selfClosing && (elementName === 'CipherValue' || elementName.endsWith(':CipherValue'))) textLimit = limits.maxCipherValueLength;
      if (!selfClosing && ++depth > limits.maxDepth) tooComplex(`nesting deeper than ${limits.maxDepth}`);
    }
    i = end + 1;
  }
}
