import { createPublicKey, sign, verify } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { SAML, type Profile } from '@node-saml/node-saml';
import type { Clock } from '../../domain/clock.js';
import type { MemberRepository } from '../../domain/members.js';
import type { TenantRepository } from '../../domain/tenants.js';
import type { SamlSettings, Tenant } from '../../domain/tenant.js';
import { AppError } from '../../errors/index.js';
import { digestForKey, keys, LOGOUT_TRANSACTION_TTL_MS, type KeyValueStore } from '../../store/index.js';
import type { WebSession, WebSessions } from '../sessions.js';
import { newOpaqueId } from '../transactions.js';
import { findWeakAlgorithm, signatureHash } from './algorithms.js';
import { SignatureRefused, verifyEnvelopedSignature } from './enveloped-signature.js';
import { NAMEID_UNSPECIFIED, buildSamlOptions, sloCallbackUrl, sloUrl, spEntityId, type SpContext } from './options.js';
import { ElementIndex, NS, XmlRefused, attr, childElements, firstChild, parseUntrustedXml, plainText, xmlEscape } from './xml.js';

const STATUS_SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';
/**
 * Largest logout message accepted, as XML (inflated for HTTP-Redirect, decoded for HTTP-POST). A
 * signed LogoutRequest with a certificate in KeyInfo is 3–6 KB; inflating stops at this size.
 */
const MAX_MESSAGE_BYTES = 65_536;
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

/** The tenants a refused logout message concerns, once known (their audit trails record the refusal). */
const refusedFor = new WeakMap<AppError, string[]>();

/** The tenants whose audit trails should record this refusal of a logout message (empty: none is known). */
export function logoutRefusalTenants(err: unknown): string[] {
  return err instanceof AppError ? (refusedFor.get(err) ?? []) : [];
}

/** Runs `step`, naming `domains` as the tenants of any refusal it throws (the first naming wins). */
async function concerning<T>(domains: () => string[], step: () => T | Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    if (err instanceof AppError && !refusedFor.has(err)) refusedFor.set(err, domains());
    throw err;
  }
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
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw reject('message_too_complex', `inflates past ${MAX_MESSAGE_BYTES} bytes`);
      throw reject('message_malformed', 'not deflated base64');
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
    if (value.length > (MAX_MESSAGE_BYTES * 4) / 3 + 4) throw reject('message_too_complex', `more than ${MAX_MESSAGE_BYTES} bytes`);
    xml = Buffer.from(value, 'base64').toString('utf8');
    relayState = typeof input.body.RelayState === 'string' ? input.body.RelayState : undefined;
  }
  let root: Element;
  try {
    root = parseUntrustedXml(xml).documentElement;
  } catch (err) {
    if (err instanceof XmlRefused) throw reject(err.kind === 'xml_too_complex' ? 'message_too_complex' : 'message_malformed', `${err.kind}: ${err.message}`);
    throw err;
  }
  if (root.namespaceURI !== NS.protocol || root.localName !== rootName) throw reject('message_malformed', `not a ${rootName}`);
  return { root, xml, relayState, detached };
}

/** The one text of an identity field (NameID, SessionIndex, Issuer): comments, PIs or markup inside are refused. */
function identityText(el: Element, reason: string, what: string): string {
  const text = plainText(el);
  if (text === null) throw reject(reason, `${what} holds more than text`);
  const value = text.trim();
  if (value.length === 0 || value.length > 1024 || /[\u0000-\u001f\u007f]/.test(value)) throw reject(reason, `${what} empty, too long or with control characters`);
  return value;
}

/**
 * Verifies the message against the tenant's IdP certificates, detached (redirect) or enveloped (POST),
 * and returns the message as the signature covers it: every fact is read from that element only. A
 * detached signature covers the whole deflated message, so the parsed message is the signed one; an
 * enveloped signature covers its exact canonical form, which is parsed again (as the ACS does), so
 * nothing added beside the signed bytes (a comment, a processing instruction …) is ever read.
 */
function verifySignature(message: ReceivedMessage, { idpCertificates: certificates, allowSha1 }: Pick<SamlSettings, 'idpCertificates' | 'allowSha1'>): Element {
  if (message.detached) {
    // The tenant's algorithm rule, as at login (S-8): RSA-SHA256 or stronger; RSA-SHA1 if it opted in.
    const hash = signatureHash(message.detached.sigAlg, allowSha1);
    if (!hash) throw reject('weak_algorithm', `SigAlg ${message.detached.sigAlg}`);
    const ok = certificates.some((cert) => {
      try {
        return verify(hash, Buffer.from(message.detached!.signed), createPublicKey(cert), message.detached!.signature);
      } catch {
        return false;
      }
    });
    if (!ok) throw reject('signature_invalid');
    return message.root;
  }
  const signatures = childElements(message.root, NS.dsig, 'Signature');
  if (signatures.length === 0) throw reject('signature_missing');
  const index = new ElementIndex(message.root.ownerDocument);
  const weak = findWeakAlgorithm(index, allowSha1);
  if (weak) throw reject('weak_algorithm', weak);
  let signedXml: string | null;
  try {
    // The strict verifier checks the signature over SignedInfo before it canonicalizes the message.
    signedXml = verifyEnvelopedSignature(message.root, { certificates, allowSha1, index });
  } catch (err) {
    throw reject('signature_invalid', err instanceof SignatureRefused ? err.message : `signature check failed: ${String(err)}`);
  }
  if (signedXml === null) throw reject('signature_missing');
  const signed = parseUntrustedXml(signedXml).documentElement;
  if (signed.namespaceURI !== message.root.namespaceURI || signed.localName !== message.root.localName || attr(signed, 'ID') !== attr(message.root, 'ID')) {
    throw reject('signature_invalid', 'the verified element is not the message');
  }
  return signed;
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
    return concerning(() => [tenant.domain], () => {
      this.checkIssuer(message.root, saml.idpEntityId);
      const root = verifySignature(message, saml);
      this.checkIssuer(root, saml.idpEntityId);
      this.checkDestination(root, sloCallbackUrl(this.deps.sp));
      this.checkFresh(root);
      if (attr(root, 'InResponseTo') !== txn.requestId) throw reject('in_response_to_mismatch');
      const status = attr(firstChild(firstChild(root, NS.protocol, 'Status') ?? root, NS.protocol, 'StatusCode'), 'Value');
      return { tenant, target: txn.target, success: status === STATUS_SUCCESS };
    });
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
    const { tenants, root } = await this.findTenantsByVerifiedIssuer(issuer, message);
    return concerning(() => tenants.map((t) => t.domain), () => this.receiveVerifiedRequest(message, issuer, tenants, root));
  }

  /** receiveRequest once the message's signature is verified for `tenants`. */
  private async receiveVerifiedRequest(
    message: ReceivedMessage,
    issuer: string,
    tenants: Tenant[],
    root: Element,
  ): Promise<{ tenant: Tenant; ended: number; memberId: string | null; responseUrl: string | null }> {
    // From here on, every fact comes from the message as its signature covers it.
    this.checkIssuer(root, issuer);
    this.checkDestination(root, sloUrl(this.deps.sp));
    this.checkFresh(root);
    const requestId = attr(root, 'ID');
    if (!requestId) throw reject('message_malformed', 'no ID');
    const first = await this.deps.store.set(keys.samlLogoutSeen(tenants[0]!.domain, digestForKey(`${issuer}\n${requestId}`)), '1', {
      nx: true,
      ttlMs: MESSAGE_MAX_AGE_MS + 2 * this.deps.clockSkewMs,
    });
    if (!first) throw reject('message_replayed');

    const nameIds = childElements(root, NS.assertion, 'NameID');
    if (nameIds.length !== 1) throw reject('name_id_invalid', `${nameIds.length} NameID elements`);
    const nameId = identityText(nameIds[0]!, 'name_id_invalid', 'NameID');
    const sessionIndexes = childElements(root, NS.protocol, 'SessionIndex').map((e) => identityText(e, 'session_index_invalid', 'SessionIndex'));
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

  /**
   * Tenants registered with this IdP entity ID whose certificates verify the message (sorted by
   * domain), and the message as verified. Tenants that register the same certificates share one
   * verification: a stranger naming a popular IdP pays for one signature check per distinct set.
   */
  private async findTenantsByVerifiedIssuer(issuer: string, message: ReceivedMessage): Promise<{ tenants: Tenant[]; root: Element }> {
    const domains = await this.deps.store.sMembers(keys.samlIdpTenants(digestForKey(issuer)));
    let lastError: AppError = reject('issuer_unknown', 'no tenant has this IdP');
    const verified: Tenant[] = [];
    const candidates: string[] = [];
    const outcomes = new Map<string, Element | AppError>();
    let root: Element | undefined;
    for (const domain of domains.sort()) {
      const tenant = await this.deps.tenants.find(domain);
      const saml = tenant?.sso.saml;
      if (!tenant || !saml || saml.idpEntityId !== issuer || tenant.sso.type !== 'saml') continue;
      candidates.push(tenant.domain);
      // Tenants sharing an IdP share one verification, when they also share the SHA-1 choice.
      const certificateSet = [String(saml.allowSha1), ...[...saml.idpCertificates].sort()].join('\n');
      let outcome = outcomes.get(certificateSet);
      if (!outcome) {
        try {
          outcome = verifySignature(message, saml);
        } catch (err) {
          if (!(err instanceof AppError)) throw err;
          outcome = err;
        }
        outcomes.set(certificateSet, outcome);
      }
      if (outcome instanceof AppError) {
        lastError = outcome;
        continue;
      }
      root ??= outcome;
      verified.push(tenant);
    }
    // No certificate verified it: the tenants registered with this IdP are told (their trails), as a refused login would be.
    if (verified.length === 0 || !root) {
      if (candidates.length && !refusedFor.has(lastError)) refusedFor.set(lastError, candidates);
      throw lastError;
    }
    return { tenants: verified, root };
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
