import { createPublicKey, sign, verify } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { SAML, type Profile } from '@node-saml/node-saml';
import { SignedXml } from 'xml-crypto';
import type { Clock } from '../../domain/clock.js';
import type { MemberRepository } from '../../domain/members.js';
import type { TenantRepository } from '../../domain/tenants.js';
import type { Tenant } from '../../domain/tenant.js';
import { AppError } from '../../errors/index.js';
import { digestForKey, keys, LOGOUT_TRANSACTION_TTL_MS, type KeyValueStore } from '../../store/index.js';
import type { WebSession, WebSessions } from '../sessions.js';
import { newOpaqueId } from '../transactions.js';
import { STRONG_SIGNATURES, findWeakAlgorithm } from './algorithms.js';
import { NAMEID_UNSPECIFIED, buildSamlOptions, sloCallbackUrl, sloUrl, spEntityId, type SpContext } from './options.js';
import { NS, XmlRefused, attr, childElements, descendants, firstChild, parseUntrustedXml, plainText, xmlEscape } from './xml.js';

const STATUS_SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';
const MAX_MESSAGE_BYTES = 100_000;
/** How old a logout message may be (IssueInstant), on top of the clock skew. */
const MESSAGE_MAX_AGE_MS = 10 * 60_000;

export interface SloDeps {
  tenants: TenantRepository;
  members: MemberRepository;
  sessions: WebSessions;
  store: KeyValueStore;
  clock: Clock;
  sp: SpContext;
  clockSkewMs: number;
}

/** A SAML message as it reached an SLO endpoint: HTTP-Redirect (GET, raw query) or HTTP-POST (form). */
export interface SamlMessageInput {
  method: string;
  /** The raw query string: redirect-binding signatures cover its exact bytes. */
  rawQuery: string;
  body: Record<string, unknown>;
}

interface LogoutTransaction {
  domain: string;
  requestId: string;
  target: string | null;
  createdAt: number;
}

const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';

/** RFC 3986 strict percent-encoding: neither browsers nor IdPs re-encode these octets, so the signed query is the query received. */
const strictEncode = (v: string): string => encodeURIComponent(v).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * HTTP-Redirect binding (SAML bindings §3.4.4.1): the signature covers exactly the query octets sent.
 * (node-saml signs querystring.stringify() but writes the URL with URLSearchParams, which encode a
 * space, `!`, `'`, `(`, `)` and `~` differently, so an echoed RelayState holding one broke the signature.)
 */
function signedRedirectUrl(target: string, field: 'SAMLRequest' | 'SAMLResponse', xml: string, relayState: string | undefined, privateKey: string): string {
  let query = `${field}=${strictEncode(deflateRawSync(Buffer.from(xml, 'utf8')).toString('base64'))}`;
  if (relayState) query += `&RelayState=${strictEncode(relayState)}`;
  query += `&SigAlg=${strictEncode(RSA_SHA256)}`;
  const signature = sign('sha256', Buffer.from(query), privateKey).toString('base64');
  const url = new URL(target);
  url.hash = '';
  return `${url.origin}${url.pathname}${url.search ? `${url.search}&` : '?'}${query}&Signature=${strictEncode(signature)}`;
}

function reject(reason: string, detail?: string): AppError {
  return new AppError('saml_logout_invalid', { reason, detail: detail ?? reason });
}

/** Splits a raw query into its raw (still URL-encoded) values; a repeated parameter is refused. */
function rawParams(rawQuery: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = eq < 0 ? part : part.slice(0, eq);
    if (out.has(name)) throw reject('message_malformed', `repeated ${name}`);
    out.set(name, eq < 0 ? '' : part.slice(eq + 1));
  }
  return out;
}

const decodeParam = (raw: string): string => {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    throw reject('message_malformed', 'bad percent-encoding');
  }
};

/** A SAML message, decoded and parsed, with what is needed to verify its signature. */
interface ReceivedMessage {
  root: Element;
  xml: string;
  relayState?: string;
  /** Redirect binding: the signed octets, the algorithm and the signature. */
  detached?: { signed: string; sigAlg: string; signature: Buffer };
}

function receive(input: SamlMessageInput, field: 'SAMLRequest' | 'SAMLResponse', rootName: 'LogoutRequest' | 'LogoutResponse'): ReceivedMessage {
  let xml: string;
  let relayState: string | undefined;
  let detached: ReceivedMessage['detached'];
  if (input.method === 'GET') {
    const params = rawParams(input.rawQuery);
    const raw = params.get(field);
    if (!raw) throw reject('message_missing');
    const encoded = decodeParam(raw);
    try {
      xml = inflateRawSync(Buffer.from(encoded, 'base64'), { maxOutputLength: MAX_MESSAGE_BYTES }).toString('utf8');
    } catch {
      throw reject('message_malformed', 'not deflated base64, or too large');
    }
    const rawRelay = params.get('RelayState');
    relayState = rawRelay === undefined ? undefined : decodeParam(rawRelay);
    const rawSigAlg = params.get('SigAlg');
    const rawSignature = params.get('Signature');
    if (rawSigAlg !== undefined && rawSignature !== undefined) {
      // SAML bindings §3.4.4.1: the signature covers the parameters as received, in this order.
      const signed = `${field}=${raw}${rawRelay === undefined ? '' : `&RelayState=${rawRelay}`}&SigAlg=${rawSigAlg}`;
      detached = { signed, sigAlg: decodeParam(rawSigAlg), signature: Buffer.from(decodeParam(rawSignature), 'base64') };
    }
  } else {
    const value = input.body[field];
    if (typeof value !== 'string' || value === '') throw reject('message_missing');
    if (value.length > (MAX_MESSAGE_BYTES * 4) / 3) throw reject('message_malformed', 'too large');
    xml = Buffer.from(value, 'base64').toString('utf8');
    relayState = typeof input.body.RelayState === 'string' ? input.body.RelayState : undefined;
  }
  let root: Element;
  try {
    root = parseUntrustedXml(xml).documentElement;
  } catch (err) {
    if (err instanceof XmlRefused) throw reject('message_malformed', err.kind);
    throw err;
  }
  if (root.namespaceURI !== NS.protocol || root.localName !== rootName) throw reject('message_malformed', `not a ${rootName}`);
  return { root, xml, relayState, detached };
}

/** Verifies the message against the tenant's IdP certificates: detached (redirect) or enveloped (POST). */
function verifySignature(message: ReceivedMessage, certificates: readonly string[]): void {
  if (message.detached) {
    const hash = STRONG_SIGNATURES.get(message.detached.sigAlg);
    if (!hash) throw reject('weak_algorithm', `SigAlg ${message.detached.sigAlg}`);
    const ok = certificates.some((cert) => {
      try {
        return verify(hash, Buffer.from(message.detached!.signed), createPublicKey(cert), message.detached!.signature);
      } catch {
        return false;
      }
    });
    if (!ok) throw reject('signature_invalid');
    return;
  }
  const signatures = childElements(message.root, NS.dsig, 'Signature');
  if (signatures.length === 0) throw reject('signature_missing');
  if (signatures.length > 1) throw reject('signature_invalid', 'more than one signature');
  const weak = findWeakAlgorithm(message.root, false);
  if (weak) throw reject('weak_algorithm', weak);
  const id = attr(message.root, 'ID');
  const doc = message.root.ownerDocument;
  // The one signature must reference the root, and the root's ID must be unique (no wrapping).
  if (!id || !doc || descendants(doc, '*', '*').filter((e) => e.getAttribute('ID') === id).length !== 1) {
    throw reject('signature_invalid', 'root ID missing or not unique');
  }
  const ok = certificates.some((cert) => {
    try {
      const sig = new SignedXml({ publicCert: cert });
      sig.loadSignature(signatures[0]!);
      const refs = sig.getReferences();
      if (refs.length !== 1 || refs[0]!.uri !== `#${id}`) return false;
      return sig.checkSignature(message.xml);
    } catch {
      return false;
    }
  });
  if (!ok) throw reject('signature_invalid');
}

/**
 * SAML single logout (S-13): SP-initiated LogoutRequests (signed, HTTP-Redirect, RSA-SHA256) and
 * their LogoutResponses at /saml2/sp/slo/callback, and IdP-initiated LogoutRequests at /saml2/sp/slo.
 * Messages are verified here, strictly: a signature is required (detached for GET, enveloped for
 * POST) by one of the tenant's registered IdP certificates; node-saml only builds and signs ours.
 */
export class SamlLogout {
  constructor(private readonly deps: SloDeps) {}

  /** SLO is possible for this tenant and session: the SP can sign and the IdP has an SLO URL. */
  canStart(tenant: Tenant, session: WebSession): boolean {
    return Boolean(this.deps.sp.signing && tenant.sso.enabled && tenant.sso.type === 'saml' && tenant.sso.saml?.idpSloUrl && session.nameId);
  }

  /** SP-initiated: the IdP URL carrying a signed LogoutRequest; RelayState names a logout transaction. */
  async start(tenant: Tenant, session: WebSession, finalTarget: string | null): Promise<string> {
    const requestId = `_${newOpaqueId(20)}`;
    const id = newOpaqueId();
    const txn: LogoutTransaction = { domain: tenant.domain, requestId, target: finalTarget, createdAt: this.deps.clock.now() };
    await this.deps.store.set(keys.logoutTransaction(id), JSON.stringify(txn), { ttlMs: LOGOUT_TRANSACTION_TTL_MS });
    const saml = new SAML(buildSamlOptions({ tenant, sp: this.deps.sp, requestId }));
    const user = { issuer: tenant.sso.saml!.idpEntityId, nameID: session.nameId!, nameIDFormat: NAMEID_UNSPECIFIED, sessionIndex: session.sessionIndex } as Profile;
    return saml.getLogoutUrlAsync(user, id, {});
  }

  /** The IdP's LogoutResponse to our request; returns the tenant and the final target (if any). */
  async finish(input: SamlMessageInput): Promise<{ tenant: Tenant; target: string | null; success: boolean }> {
    const message = receive(input, 'SAMLResponse', 'LogoutResponse');
    const id = message.relayState;
    const raw = typeof id === 'string' && /^[A-Za-z0-9_-]{32}$/.test(id) ? await this.deps.store.getDel(keys.logoutTransaction(id)) : null;
    if (raw === null) throw reject('logout_transaction_invalid');
    const txn = JSON.parse(raw) as LogoutTransaction;
    const tenant = await this.deps.tenants.find(txn.domain);
    const saml = tenant?.sso.saml;
    if (!tenant || !saml) throw reject('logout_transaction_invalid', 'tenant gone');
    this.checkIssuer(message.root, saml.idpEntityId);
    verifySignature(message, saml.idpCertificates);
    this.checkDestination(message.root, sloCallbackUrl(this.deps.sp));
    this.checkFresh(message.root);
    if (attr(message.root, 'InResponseTo') !== txn.requestId) throw reject('in_response_to_mismatch');
    const status = attr(firstChild(firstChild(message.root, NS.protocol, 'Status') ?? message.root, NS.protocol, 'StatusCode'), 'Value');
    return { tenant, target: txn.target, success: status === STATUS_SUCCESS };
  }

  /**
   * IdP-initiated: verifies the LogoutRequest, ends the sessions of the named member (those of the
   * given SessionIndex when one is named), and returns the signed LogoutResponse URL (null when the
   * IdP has no SLO URL to answer to).
   */
  async receiveRequest(input: SamlMessageInput): Promise<{ tenant: Tenant; ended: number; memberId: string | null; responseUrl: string | null }> {
    const message = receive(input, 'SAMLRequest', 'LogoutRequest');
    const issuerEl = firstChild(message.root, NS.assertion, 'Issuer');
    const issuer = issuerEl ? plainText(issuerEl)?.trim() : undefined;
    if (!issuer) throw reject('issuer_unknown', 'no Issuer');
    // Several tenants may register the same IdP (same entity ID and certificate): the request speaks for all of them.
    const tenants = await this.findTenantsByVerifiedIssuer(issuer, message);
    this.checkDestination(message.root, sloUrl(this.deps.sp));
    this.checkFresh(message.root);
    const requestId = attr(message.root, 'ID');
    if (!requestId) throw reject('message_malformed', 'no ID');
    const first = await this.deps.store.set(keys.samlLogoutSeen(tenants[0]!.domain, digestForKey(`${issuer}\n${requestId}`)), '1', {
      nx: true,
      ttlMs: MESSAGE_MAX_AGE_MS + 2 * this.deps.clockSkewMs,
    });
    if (!first) throw reject('message_replayed');

    const nameIds = childElements(message.root, NS.assertion, 'NameID');
    const nameId = nameIds.length === 1 ? plainText(nameIds[0]!)?.trim() : undefined;
    if (!nameId) throw reject('name_id_invalid');
    const sessionIndexes = childElements(message.root, NS.protocol, 'SessionIndex').map((e) => plainText(e)?.trim() ?? '');
    let ended = 0;
    let found: { tenant: Tenant; memberId: string; ended: number } | null = null;
    for (const tenant of tenants) {
      const member =
        tenant.sso.userKey === 'account'
          ? await this.deps.members.findByAccount(tenant.domain, nameId)
          : await this.deps.members.findByExternalKey(tenant.domain, nameId);
      if (!member) continue;
      const n = await this.deps.sessions.destroyMatching(tenant.domain, member.id, (s) => sessionIndexes.length === 0 || sessionIndexes.includes(s.sessionIndex ?? ''));
      ended += n;
      if (!found || (found.ended === 0 && n > 0)) found = { tenant, memberId: member.id, ended: n };
    }
    const tenant = found?.tenant ?? tenants[0]!;
    const answerVia = [tenant, ...tenants].find((t) => t.sso.saml?.idpSloUrl);

    let responseUrl: string | null = null;
    if (answerVia && this.deps.sp.signing) {
      const target = answerVia.sso.saml!.idpSloUrl!;
      const xml =
        `<samlp:LogoutResponse xmlns:samlp="${NS.protocol}" xmlns:saml="${NS.assertion}" ID="_${newOpaqueId(20)}" Version="2.0"` +
        ` IssueInstant="${new Date(this.deps.clock.now()).toISOString()}" Destination="${xmlEscape(target)}" InResponseTo="${xmlEscape(requestId)}">` +
        `<saml:Issuer>${xmlEscape(spEntityId(this.deps.sp, answerVia))}</saml:Issuer>` +
        `<samlp:Status><samlp:StatusCode Value="${STATUS_SUCCESS}"/></samlp:Status></samlp:LogoutResponse>`;
      responseUrl = signedRedirectUrl(target, 'SAMLResponse', xml, message.relayState, this.deps.sp.signing.privateKey);
    }
    return { tenant, ended, memberId: found?.memberId ?? null, responseUrl };
  }

  /** Tenants registered with this IdP entity ID whose certificates verify the message (sorted by domain). */
  private async findTenantsByVerifiedIssuer(issuer: string, message: ReceivedMessage): Promise<Tenant[]> {
    const domains = await this.deps.store.sMembers(keys.samlIdpTenants(digestForKey(issuer)));
    let lastError: AppError = reject('issuer_unknown', 'no tenant has this IdP');
    const verified: Tenant[] = [];
    for (const domain of domains.sort()) {
      const tenant = await this.deps.tenants.find(domain);
      const saml = tenant?.sso.saml;
      if (!tenant || !saml || saml.idpEntityId !== issuer || tenant.sso.type !== 'saml') continue;
      try {
        verifySignature(message, saml.idpCertificates);
        verified.push(tenant);
      } catch (err) {
        if (!(err instanceof AppError)) throw err;
        lastError = err;
      }
    }
    if (verified.length === 0) throw lastError;
    return verified;
  }

  private checkIssuer(root: Element, expected: string): void {
    const issuer = firstChild(root, NS.assertion, 'Issuer');
    if (!issuer || plainText(issuer)?.trim() !== expected) throw reject('issuer_unknown', 'Issuer is not the tenant IdP');
  }

  // SAML bindings §3.4.5.2 / §3.5.5.2: a signed message names its Destination, and it must be us.
  private checkDestination(root: Element, expected: string): void {
    if (attr(root, 'Destination') !== expected) throw reject('destination_mismatch');
  }

  private checkFresh(root: Element): void {
    const now = this.deps.clock.now();
    const issued = Date.parse(attr(root, 'IssueInstant') ?? '');
    if (!Number.isFinite(issued)) throw reject('message_malformed', 'no IssueInstant');
    if (issued > now + this.deps.clockSkewMs || now - issued > MESSAGE_MAX_AGE_MS + this.deps.clockSkewMs) throw reject('message_expired');
    const notOnOrAfter = attr(root, 'NotOnOrAfter');
    if (notOnOrAfter !== null && !(now - this.deps.clockSkewMs < Date.parse(notOnOrAfter))) throw reject('message_expired', 'NotOnOrAfter');
  }
}
