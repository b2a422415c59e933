import { DOMParser } from '@xmldom/xmldom';
import { SAML_MESSAGE_LIMITS, XmlRefused, checkXmlShape, type XmlShapeLimits } from './xml-shape.js';

export { METADATA_LIMITS, SAML_MESSAGE_LIMITS, XmlRefused, type XmlShapeLimits } from './xml-shape.js';

export const NS = {
  protocol: 'urn:oasis:names:tc:SAML:2.0:protocol',
  assertion: 'urn:oasis:names:tc:SAML:2.0:assertion',
  dsig: 'http://www.w3.org/2000/09/xmldsig#',
  metadata: 'urn:oasis:names:tc:SAML:2.0:metadata',
} as const;

export function xmlEscape(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}


/**
 * Parses untrusted XML. Any DOCTYPE (and so any entity declaration) is refused before parsing — the
 * classic XXE / billion-laughs shapes never reach a parser — and so is any document past the
 * structural `limits` (depth, nodes, namespace declarations, attributes, text length: one linear
 * pre-scan, so a hostile document costs about what reading it costs). Every parser warning is an error.
 */
export function parseUntrustedXml(xml: string, limits: XmlShapeLimits = SAML_MESSAGE_LIMITS): Document {
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) throw new XmlRefused('doctype_refused', 'DOCTYPE or ENTITY declaration');
  checkXmlShape(xml, limits);
  const fail = (msg: string): never => {
    throw new XmlRefused('xml_malformed', msg);
  };
  let doc: Document;
  try {
    // No `locator`: line numbers would only decorate error messages, and cost on every node.
    doc = new DOMParser({
      errorHandler: { warning: fail, error: fail, fatalError: fail },
    }).parseFromString(xml, 'text/xml');
  } catch (err) {
    if (err instanceof XmlRefused) throw err;
    throw new XmlRefused('xml_malformed', err instanceof Error ? err.message : 'parse error');
  }
  if (!doc?.documentElement) throw new XmlRefused('xml_malformed', 'no document element');
  if (doc.doctype) throw new XmlRefused('doctype_refused', 'DOCTYPE');
  return doc;
}

/** Element children of `parent` with the given namespace and local name (direct children only). */
export function childElements(parent: Element | Document, ns: string, localName: string): Element[] {
  const out: Element[] = [];
  for (let n = parent.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === 1 && (n as Element).namespaceURI === ns && (n as Element).localName === localName) out.push(n as Element);
  }
  return out;
}

export function firstChild(parent: Element | Document, ns: string, localName: string): Element | undefined {
  return childElements(parent, ns, localName)[0];
}

/** Attribute names XML-signature tools resolve a same-document reference (`#id`) by. */
const ID_ATTRIBUTES = new Set(['ID', 'Id', 'id']);

/**
 * Every element of a parsed document by namespace and local name, and by ID-like attribute (ID, Id or
 * id, in any namespace), from one walk: the ACS asks several such questions of one document, and each
 * getElementsByTagNameNS walks the whole tree again. The document must not change afterwards.
 */
export class ElementIndex {
  private readonly byName = new Map<string, Element[]>();
  private readonly byId = new Map<string, Element[]>();

  constructor(doc: Document) {
    const add = (map: Map<string, Element[]>, key: string, el: Element): void => {
      const list = map.get(key);
      if (list) list.push(el);
      else map.set(key, [el]);
    };
    const stack: Element[] = [doc.documentElement];
    while (stack.length) {
      const el = stack.pop()!;
      add(this.byName, `${el.namespaceURI ?? ''} ${el.localName}`, el);
      const ids = new Set<string>();
      for (let i = 0; i < el.attributes.length; i++) {
        const a = el.attributes[i]!;
        if (ID_ATTRIBUTES.has(a.localName ?? a.name) && !ids.has(a.value)) {
          ids.add(a.value);
          add(this.byId, a.value, el);
        }
      }
      // Children pushed last-first, so elements come out in document order.
      for (let n = el.lastChild; n; n = n.previousSibling) if (n.nodeType === 1) stack.push(n as Element);
    }
  }

  /** Elements with this namespace and local name, in document order. */
  named(ns: string, localName: string): Element[] {
    return this.byName.get(`${ns} ${localName}`) ?? [];
  }

  /** Elements carrying `value` in an ID-like attribute, in document order. */
  withId(value: string): Element[] {
    return this.byId.get(value) ?? [];
  }
}

/** All descendants with that name, anywhere below `root` (for an index: anywhere in its document). */
export function descendants(root: Element | Document | ElementIndex, ns: string, localName: string): Element[] {
  if (root instanceof ElementIndex) return root.named(ns, localName);
  return Array.from(root.getElementsByTagNameNS(ns, localName));
}

/** Text of an element whose children are text nodes only; null when it holds anything else. */
export function plainText(el: Element): string | null {
  let text = '';
  for (let n = el.firstChild; n; n = n.nextSibling) {
    if (n.nodeType !== 3) return null;
    text += n.nodeValue ?? '';
  }
  return text;
}

export function attr(el: Element | undefined, name: string): string | null {
  return el?.hasAttribute(name) ? el.getAttribute(name) : null;
}
