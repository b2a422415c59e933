import { DOMParser } from '@xmldom/xmldom';

export const NS = {
  protocol: 'urn:oasis:names:tc:SAML:2.0:protocol',
  assertion: 'urn:oasis:names:tc:SAML:2.0:assertion',
  dsig: 'http://www.w3.org/2000/09/xmldsig#',
  metadata: 'urn:oasis:names:tc:SAML:2.0:metadata',
} as const;

export function xmlEscape(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

export class XmlRefused extends Error {
  constructor(
    readonly kind: 'doctype_refused' | 'xml_malformed',
    message: string,
  ) {
    super(message);
    this.name = 'XmlRefused';
  }
}

/**
 * Parses untrusted XML. Any DOCTYPE (and so any entity declaration) is refused before parsing — the
 * classic XXE / billion-laughs shapes never reach a parser — and every parser warning is an error.
 */
export function parseUntrustedXml(xml: string): Document {
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) throw new XmlRefused('doctype_refused', 'DOCTYPE or ENTITY declaration');
  const fail = (msg: string): never => {
    throw new XmlRefused('xml_malformed', msg);
  };
  let doc: Document;
  try {
    doc = new DOMParser({
      locator: {},
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

/** All descendants with that name, anywhere below `root`. */
export function descendants(root: Element | Document, ns: string, localName: string): Element[] {
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
