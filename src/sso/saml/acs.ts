import type { Clock } from '../../domain/clock.js';
import { mapAssertedIdentity } from '../../domain/identity-mapping.js';
import type { Member } from '../../domain/member.js';
import type { MemberRepository } from '../../domain/members.js';
import type { TenantRepository } from '../../domain/tenants.js';
import type { SamlSettings, Tenant } from '../../domain/tenant.js';
import { AppError, type SamlRejectReason } from '../../errors/index.js';
import { withSpan } from '../../observability/tracing.js';
import { keys, type KeyValueStore } from '../../store/index.js';
import { TRANSACTION_ID_RE, type ClientKind, type LoginTransaction, type LoginTransactions } from '../transactions.js';
import { findWeakAlgorithm } from './algorithms.js';
import { openEncryptedAssertion } from './encrypted-assertion.js';
import { SignatureRefused, exclusiveCanonicalForm, verifyEnvelopedSignature } from './enveloped-signature.js';
import { AssertionShapeRefused, findSubjectAssertion } from './subject-assertion.js';
import { acsUrl, requireSamlSettings, spEntityId, type SpContext } from './options.js';
import { ElementIndex, NS, XmlRefused, attr, childElements, descendants, firstChild, parseUntrustedXml, plainText } from './xml.js';

const STATUS_SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';
const BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';
const NAME_ID_MAX = 256;

export interface AcsDeps {
  tenants: TenantRepository;
  members: MemberRepository;
  transactions: LoginTransactions;
  store: KeyValueStore;
  clock: Clock;
  sp: SpContext;
  clockSkewMs: number;
  /** How long after its IssueInstant an assertion is still accepted (plus the skew). */
  maxAssertionAgeMs: number;
  maxResponseBytes: number;
  replayWindowMs: number;
  /** S-9: where an allowed unsolicited login lands (the tenant's default service URL, else the gateway's); none refuses it. */
  defaultServiceUrl?: (tenant: Tenant) => string | undefined;
}

export interface AcsInput {
  domain: string;
  samlResponse: unknown;
  relayState: unknown;
  /** The request's login binding cookie (raw value), checked against the transaction's digest. */
  browserBinding?: string;
}

export interface AcsResult {
  tenant: Tenant;
  member: Member;
  /** Where to send the browser (S-5 target of the transaction, or the default for unsolicited). */
  target: string | null;
  clientKind: ClientKind;
  transaction: LoginTransaction | null;
  nameId: string;
  sessionIndex?: string;
  /** SessionNotOnOrAfter of the AuthnStatement, ms since epoch (S-10). */
  sessionNotOnOrAfter?: number;
  assertionId: string;
  /** The assertion came encrypted: which SP key opened it, and what node-saml is given (encrypted-assertion.ts). */
  encryption?: { keyId: 'current' | 'next'; secondGateXml: string | null };
}

/** Everything the steps learn, in the order they learn it. A field is set by exactly one step. */
interface AcsContext {
  readonly input: AcsInput;
  tenant?: Tenant;
  /** The tenant's SSO is off: only a test sign-in's transaction is accepted. */
  testOnly?: boolean;
  saml?: SamlSettings & { idpCertificates: string[] };
  xml?: string;
  response?: Element;
  /** Every element of the posted document by name and by ID, from one walk. */
  index?: ElementIndex;
  rawAssertion?: Element;
  /** An EncryptedAssertion's plaintext lives in its own document: its index, and how it was opened. */
  decrypted?: ReturnType<typeof openEncryptedAssertion>;
  /** null: an unsolicited (IdP-initiated) response the tenant allows. */
  transaction?: LoginTransaction | null;
  /** The assertion as verified by the signature: every identity fact is read from here. */
  assertion?: Element;
  nameId?: string;
  /** The member lookup (S-1 … S-3), started with the replay check; its outcome is taken after it. */
  member?: Promise<Member>;
}

function reject(reason: SamlRejectReason, detail?: string): AppError {
  return new AppError('saml_response_invalid', { reason, detail: detail ?? reason });
}

function need<T>(value: T | undefined | null, what: string): T {
  if (value === undefined || value === null) throw new Error(`ACS step order broken: ${what} missing`);
  return value;
}

function parseInstant(value: string | null): number | null {
  if (value === null) return null;
  // xs:dateTime as IdPs send it; anything Date cannot read is malformed, not "no limit".
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(value)) return Number.NaN;
  return Date.parse(value);
}

/**
 * The SAML assertion consumer (S-8, S-9). Each step is one check that throws; the table below is the
 * order they run in. Steps before `verifySignature` look at untrusted bytes and may only refuse;
 * steps after it read identity facts from the verified assertion only. What is cheap comes first:
 * the tenant and the transaction named by RelayState are looked up before the XML is parsed, the
 * XML's shape is bounded before parsing, and the signature over SignedInfo is checked before the
 * assertion is canonicalized, so a stranger's request costs a small, bounded amount of CPU.
 */
export class SamlAcs {
  private readonly steps: ReadonlyArray<readonly [string, (ctx: AcsContext) => void | Promise<void>]> = [
    ['checkTenant', (c) => this.checkTenant(c)],
    ['readSamlResponse', (c) => this.readSamlResponse(c)],
    ['resolveTransaction', (c) => this.resolveTransaction(c)],
    ['parseResponseXml', (c) => this.parseResponseXml(c)],
    ['checkSingleAssertion', (c) => this.checkSingleAssertion(c)],
    ['checkAlgorithms', (c) => this.checkAlgorithms(c)],
    ['verifySignature', (c) => this.verifySignature(c)],
    ['checkStatus', (c) => this.checkStatus(c)],
    ['checkIssuer', (c) => this.checkIssuer(c)],
    ['checkInResponseTo', (c) => this.checkInResponseTo(c)],
    ['checkDestination', (c) => this.checkDestination(c)],
    ['checkBearerConfirmation', (c) => this.checkBearerConfirmation(c)],
    ['checkAudience', (c) => this.checkAudience(c)],
    ['checkConditionsTime', (c) => this.checkConditionsTime(c)],
    ['checkAssertionAge', (c) => this.checkAssertionAge(c)],
    ['checkNameId', (c) => this.checkNameId(c)],
    ['checkReplay', (c) => this.checkReplay(c)],
  ];

  constructor(private readonly deps: AcsDeps) {}

  /** Names of the checks in the order they run (documentation and tests). */
  get checkOrder(): string[] {
    return this.steps.map(([name]) => name);
  }

  async consume(input: AcsInput): Promise<AcsResult> {
    const ctx: AcsContext = { input };
    try {
      for (const [name, step] of this.steps) await withSpan(`saml.acs.${name}`, () => step(ctx));
      // The member lookup (started by checkNameId) is awaited here.
      return await withSpan('saml.acs.result', () => this.result(ctx));
    } catch (err) {
      // Let the caller audit the refusal against the tenant when we got that far.
      if (err instanceof AppError && ctx.tenant) err.tenantDomain = ctx.tenant.domain;
      // On a test sign-in the refusal is the test's outcome: say which test, and what the IdP asserted.
      const testSignInId = ctx.transaction?.testSignInId;
      if (err instanceof AppError && testSignInId) err.testSignIn = { id: testSignInId, ...(ctx.nameId !== undefined ? { assertedId: ctx.nameId } : {}) };
      throw err;
    }
  }

  private async result(ctx: AcsContext): Promise<AcsResult> {
    const tenant = need(ctx.tenant, 'tenant');
    const assertion = need(ctx.assertion, 'assertion');
    const nameId = need(ctx.nameId, 'nameId');
    const member = await need(ctx.member, 'member lookup');
    const authn = firstChild(assertion, NS.assertion, 'AuthnStatement');
    const sessionNotOnOrAfter = parseInstant(attr(authn, 'SessionNotOnOrAfter'));
    const txn = ctx.transaction ?? null;
    return {
      tenant,
      member,
      target: txn ? txn.target : null,
      clientKind: txn ? txn.clientKind : 'web',
      transaction: txn,
      nameId,
      sessionIndex: attr(authn, 'SessionIndex') ?? undefined,
      sessionNotOnOrAfter: sessionNotOnOrAfter !== null && Number.isFinite(sessionNotOnOrAfter) ? sessionNotOnOrAfter : undefined,
      assertionId: need(attr(assertion, 'ID'), 'assertion ID'),
      encryption: ctx.decrypted ? { keyId: ctx.decrypted.decrypted.key.id, secondGateXml: ctx.decrypted.secondGateXml } : undefined,
    };
  }

  // S-8 (1): the tenant exists and uses SAML. While its SSO is off, only an administrator's test
  // sign-in (docs/spec.md §11) goes on: RelayState must name a live test transaction (one GET, not consumed).
  private async checkTenant(ctx: AcsContext): Promise<void> {
    const tenant = await this.deps.tenants.load(ctx.input.domain);
    const refuse = (): AppError => new AppError('sso_not_enabled', { detail: `SAML response for ${tenant.domain}, which does not use SAML SSO` });
    if (tenant.sso.type !== 'saml') throw refuse();
    if (!tenant.sso.enabled) {
      if (!tenant.sso.saml || !(await this.deps.transactions.testSignInOf(tenant.domain, ctx.input.relayState))) throw refuse();
      ctx.testOnly = true;
    }
    ctx.tenant = tenant;
    ctx.saml = requireSamlSettings(tenant);
  }

  private readSamlResponse(ctx: AcsContext): void {
    const raw = ctx.input.samlResponse;
    if (typeof raw !== 'string' || raw.length === 0) throw reject('response_missing');
    const compact = raw.replace(/[\r\n\t ]/g, '');
    if (compact.length > (this.deps.maxResponseBytes * 4) / 3 + 4) throw reject('response_too_large');
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(compact) || compact.length % 4 !== 0) throw reject('response_not_base64');
    ctx.xml = Buffer.from(compact, 'base64').toString('utf8');
  }

  private parseResponseXml(ctx: AcsContext): void {
    let doc: Document;
    try {
      doc = parseUntrustedXml(need(ctx.xml, 'xml'));
    } catch (err) {
      if (err instanceof XmlRefused) throw reject(err.kind, err.message);
      throw err;
    }
    const root = doc.documentElement;
    if (root.namespaceURI !== NS.protocol || root.localName !== 'Response') throw reject('not_a_response');
    ctx.response = root;
    ctx.index = new ElementIndex(doc);
  }

  // Exactly one Response and one Assertion in the whole document, the assertion a direct child of the
  // response: every classic signature-wrapping shape needs a second copy somewhere. Assertions inside
  // that assertion's saml:Advice are not counted, and never read (subject-assertion.ts).
  private checkSingleAssertion(ctx: AcsContext): void {
    const response = need(ctx.response, 'response');
    const index = need(ctx.index, 'index');
    if (descendants(index, NS.protocol, 'Response').length !== 1) throw reject('multiple_assertions', 'more than one Response element');
    const encrypted = descendants(index, NS.assertion, 'EncryptedAssertion');
    if (encrypted.length > 0) {
      // One EncryptedAssertion, a child of the Response, and no other assertion: then its plaintext, under
      // the same subject-assertion rule (encrypted-assertion.ts).
      if (encrypted.length > 1 || descendants(index, NS.assertion, 'Assertion').length > 0 || encrypted[0]!.parentNode !== response) {
        throw reject('multiple_assertions', 'an EncryptedAssertion beside another, or not a child of the Response');
      }
      ctx.decrypted = openEncryptedAssertion(encrypted[0]!, this.deps.sp.decryption, need(ctx.xml, 'xml'));
      ctx.rawAssertion = ctx.decrypted.assertion;
      return;
    }
    let subject: Element | null;
    try {
      subject = findSubjectAssertion(response, index);
    } catch (err) {
      if (err instanceof AssertionShapeRefused) throw reject('multiple_assertions', err.message);
      throw err;
    }
    if (!subject) {
      // A non-success status usually comes without an assertion: report the status, not the shape.
      const code = attr(firstChild(firstChild(response, NS.protocol, 'Status') ?? response, NS.protocol, 'StatusCode'), 'Value');
      throw code && code !== STATUS_SUCCESS ? reject('status_not_success', `status ${code}`) : reject('assertion_missing');
    }
    if (need(ctx.saml, 'saml').requireEncryptedAssertions) throw reject('assertion_not_encrypted', 'the tenant requires encrypted assertions; this one is plaintext');
    ctx.rawAssertion = subject;
  }

  // S-8 (2) and S-9: RelayState names a live transaction of this tenant, or the response is
  // unsolicited and the tenant allows that. Decided from RelayState alone, before the XML is parsed:
  // without a transaction (or the tenant's consent to unsolicited logins) nothing else is looked at.
  // A solicited response that lost its RelayState is refused later, by InResponseTo.
  private async resolveTransaction(ctx: AcsContext): Promise<void> {
    const relayState = ctx.input.relayState;
    const saml = need(ctx.saml, 'saml');
    const namesTransaction = typeof relayState === 'string' && TRANSACTION_ID_RE.test(relayState);
    if (!namesTransaction) {
      if (!saml.allowUnsolicited) {
        throw new AppError('unsolicited_response_refused', { reason: 'unsolicited_refused', detail: 'IdP-initiated response refused' });
      }
      // Allowed, but with nowhere to land (a setting stored before the rule): refused, never a guessed page.
      if (this.deps.defaultServiceUrl && this.deps.defaultServiceUrl(need(ctx.tenant, 'tenant')) === undefined) {
        throw new AppError('unsolicited_response_refused', { reason: 'no_default_service_url', detail: 'IdP-initiated response allowed, but no default service URL to land on' });
      }
      ctx.transaction = null;
      return;
    }
    const txn = await this.deps.transactions.consume(need(ctx.tenant, 'tenant'), relayState, ctx.input.browserBinding);
    if (txn.ssoType !== 'saml' || !txn.requestId) {
      throw new AppError('login_transaction_invalid', { reason: 'transaction_not_saml' });
    }
    if (ctx.testOnly && !txn.testSignInId) throw new AppError('sso_not_enabled', { detail: `SAML response for ${txn.domain}, whose SSO is off` });
    ctx.transaction = txn;
  }

  // S-8 (4): RSA-SHA256 or stronger, in every signature of the document.
  private checkAlgorithms(ctx: AcsContext): void {
    const allowSha1 = need(ctx.saml, 'saml').allowSha1;
    const weak = findWeakAlgorithm(need(ctx.index, 'index'), allowSha1) ?? (ctx.decrypted ? findWeakAlgorithm(ctx.decrypted.index, allowSha1) : null);
    if (weak) throw reject('weak_algorithm', weak);
  }

  // S-8 (3): signed by a registered certificate, and the signature covers the assertion we use.
  // Verified on the document parsed once above. Either the assertion carries a valid enveloped
  // signature (SAML core 5.4) by one of the tenant's certificates (KeyInfo is never trusted), and a
  // Response that is signed too must verify as well; or — the profile allows it, Shibboleth's default —
  // only the Response is signed, its signature then covering the one assertion it holds, unless the
  // tenant requires signed assertions. What the signature covers — its canonical form — is parsed
  // again, and every later identity fact is read from the assertion of that copy only.
  private verifySignature(ctx: AcsContext): void {
    const saml = need(ctx.saml, 'saml');
    const rawAssertion = need(ctx.rawAssertion, 'rawAssertion');
    const options = { certificates: saml.idpCertificates, allowSha1: saml.allowSha1, index: need(ctx.index, 'index') };
    let signedResponse: string | null;
    let signedAssertion: string | null;
    try {
      signedResponse = verifyEnvelopedSignature(need(ctx.response, 'response'), options);
      signedAssertion = verifyEnvelopedSignature(rawAssertion, ctx.decrypted ? { ...options, index: ctx.decrypted.index } : options);
    } catch (err) {
      // SignatureRefused says why; anything else a hostile document makes the canonicalizer throw
      // (a RangeError from absurd nesting …) is a refusal too, never a 500.
      throw reject('signature_invalid', err instanceof SignatureRefused ? err.message : `signature check failed: ${String(err)}`);
    }
    let assertion: Element;
    if (signedAssertion !== null) {
      assertion = parseUntrustedXml(signedAssertion).documentElement;
    } else if (signedResponse === null) {
      throw reject('signature_invalid', 'neither the assertion nor the response is signed');
    } else if (saml.requireSignedAssertions) {
      throw reject('assertion_not_signed', 'only the Response is signed and the tenant requires signed assertions');
    } else if (ctx.decrypted) {
      // The Response signature covers the EncryptedAssertion (the ciphertext, AES-CBC's included): the
      // verified Response's one EncryptedAssertion child must be the very one decrypted; the assertion
      // is then its plaintext, which went through the same subject-assertion rule.
      const verifiedResponse = parseUntrustedXml(signedResponse).documentElement;
      const inside = childElements(verifiedResponse, NS.assertion, 'EncryptedAssertion');
      const posted = childElements(need(ctx.response, 'response'), NS.assertion, 'EncryptedAssertion');
      if (inside.length !== 1 || posted.length !== 1 || exclusiveCanonicalForm(inside[0]!) !== exclusiveCanonicalForm(posted[0]!)) {
        throw reject('signature_invalid', 'the signed Response does not hold the EncryptedAssertion that was decrypted');
      }
      assertion = rawAssertion;
    } else {
      // The assertion as the Response signature covers it: the verified Response's own Assertion child.
      const verifiedResponse = parseUntrustedXml(signedResponse).documentElement;
      const inside = childElements(verifiedResponse, NS.assertion, 'Assertion');
      if (inside.length !== 1) throw reject('signature_invalid', 'the signed Response does not hold exactly one assertion');
      assertion = inside[0]!;
    }
    if (assertion.namespaceURI !== NS.assertion || assertion.localName !== 'Assertion') throw reject('signature_invalid', 'verified node is not an Assertion');
    const rawId = attr(rawAssertion, 'ID');
    if (!rawId || attr(assertion, 'ID') !== rawId) throw reject('signature_invalid', 'verified assertion is not the one in the response');
    ctx.assertion = assertion;
  }

  private checkStatus(ctx: AcsContext): void {
    const status = firstChild(need(ctx.response, 'response'), NS.protocol, 'Status');
    const code = attr(status ? firstChild(status, NS.protocol, 'StatusCode') : undefined, 'Value');
    if (code !== STATUS_SUCCESS) throw reject('status_not_success', `status ${String(code)}`);
  }

  private checkIssuer(ctx: AcsContext): void {
    const expected = need(ctx.saml, 'saml').idpEntityId;
    const issuer = firstChild(need(ctx.assertion, 'assertion'), NS.assertion, 'Issuer');
    if (!issuer || plainText(issuer)?.trim() !== expected) throw reject('issuer_mismatch');
    const responseIssuer = firstChild(need(ctx.response, 'response'), NS.assertion, 'Issuer');
    if (responseIssuer && plainText(responseIssuer)?.trim() !== expected) throw reject('issuer_mismatch', 'Response Issuer');
  }

  // S-8 (5): both the Response and the (signed) SubjectConfirmationData answer our AuthnRequest.
  private checkInResponseTo(ctx: AcsContext): void {
    const expected = ctx.transaction ? ctx.transaction.requestId : null;
    const onResponse = attr(need(ctx.response, 'response'), 'InResponseTo');
    if (onResponse !== expected) throw reject('in_response_to_mismatch', 'Response InResponseTo');
    for (const data of this.bearerConfirmationData(need(ctx.assertion, 'assertion'))) {
      if (attr(data, 'InResponseTo') !== expected) throw reject('in_response_to_mismatch', 'SubjectConfirmationData InResponseTo');
    }
  }

  // S-8 (6): Destination names this ACS (when the IdP sends it; it must when the Response is signed).
  private checkDestination(ctx: AcsContext): void {
    const response = need(ctx.response, 'response');
    const destination = attr(response, 'Destination');
    const responseSigned = childElements(response, NS.dsig, 'Signature').length > 0;
    if (destination === null && !responseSigned) return;
    if (destination !== acsUrl(this.deps.sp, need(ctx.tenant, 'tenant').domain)) throw reject('destination_mismatch');
  }

  private bearerConfirmationData(assertion: Element): Element[] {
    const subject = firstChild(assertion, NS.assertion, 'Subject');
    if (!subject) return [];
    return childElements(subject, NS.assertion, 'SubjectConfirmation')
      .filter((c) => attr(c, 'Method') === BEARER)
      .map((c) => firstChild(c, NS.assertion, 'SubjectConfirmationData'))
      .filter((d): d is Element => d !== undefined);
  }

  // Web Browser SSO profile: a bearer confirmation for this ACS that has not expired.
  private checkBearerConfirmation(ctx: AcsContext): void {
    const data = this.bearerConfirmationData(need(ctx.assertion, 'assertion'));
    if (data.length === 0) throw reject('bearer_confirmation_missing');
    const expectedRecipient = acsUrl(this.deps.sp, need(ctx.tenant, 'tenant').domain);
    const now = this.deps.clock.now();
    const skew = this.deps.clockSkewMs;
    for (const d of data) {
      if (attr(d, 'Recipient') !== expectedRecipient) throw reject('recipient_mismatch');
      const notOnOrAfter = parseInstant(attr(d, 'NotOnOrAfter'));
      if (notOnOrAfter === null || Number.isNaN(notOnOrAfter)) throw reject('bearer_confirmation_missing', 'no NotOnOrAfter');
      if (now - skew >= notOnOrAfter) throw reject('assertion_expired', 'SubjectConfirmationData NotOnOrAfter');
      const notBefore = parseInstant(attr(d, 'NotBefore'));
      if (notBefore !== null && (Number.isNaN(notBefore) || now + skew < notBefore)) throw reject('assertion_not_yet_valid', 'SubjectConfirmationData NotBefore');
    }
  }

  private conditions(ctx: AcsContext): Element | undefined {
    const all = childElements(need(ctx.assertion, 'assertion'), NS.assertion, 'Conditions');
    if (all.length > 1) throw reject('audience_mismatch', 'more than one Conditions');
    return all[0];
  }

  // Every AudienceRestriction must name our SP entity ID (SAML core 2.5.1.4).
  private checkAudience(ctx: AcsContext): void {
    const conditions = this.conditions(ctx);
    const restrictions = conditions ? childElements(conditions, NS.assertion, 'AudienceRestriction') : [];
    if (restrictions.length === 0) throw reject('audience_mismatch', 'no AudienceRestriction');
    const expected = spEntityId(this.deps.sp, need(ctx.tenant, 'tenant'));
    for (const r of restrictions) {
      const audiences = childElements(r, NS.assertion, 'Audience').map((a) => plainText(a)?.trim());
      if (!audiences.includes(expected)) throw reject('audience_mismatch');
    }
  }

  private checkConditionsTime(ctx: AcsContext): void {
    const conditions = this.conditions(ctx);
    if (!conditions) return;
    const now = this.deps.clock.now();
    const skew = this.deps.clockSkewMs;
    const notBefore = parseInstant(attr(conditions, 'NotBefore'));
    const notOnOrAfter = parseInstant(attr(conditions, 'NotOnOrAfter'));
    if (notBefore !== null && (Number.isNaN(notBefore) || now + skew < notBefore)) throw reject('assertion_not_yet_valid');
    if (notOnOrAfter !== null && (Number.isNaN(notOnOrAfter) || now - skew >= notOnOrAfter)) throw reject('assertion_expired');
  }

  // A maximum assertion age: an assertion is used within moments of being issued, whatever validity
  // window its Conditions grant; one issued in the future (beyond the skew) is not valid yet.
  private checkAssertionAge(ctx: AcsContext): void {
    const issued = parseInstant(attr(need(ctx.assertion, 'assertion'), 'IssueInstant'));
    if (issued === null || Number.isNaN(issued)) throw reject('assertion_too_old', 'no readable IssueInstant');
    const now = this.deps.clock.now();
    if (issued > now + this.deps.clockSkewMs) throw reject('assertion_not_yet_valid', 'IssueInstant in the future');
    if (now - issued > this.deps.maxAssertionAgeMs + this.deps.clockSkewMs) throw reject('assertion_too_old', `issued ${Math.round((now - issued) / 1000)} s ago`);
  }

  // One NameID of plain text in both the verified and the posted assertion: comments, CDATA or
  // markup inside it (the classic truncation attack) are refused, as are control characters.
  private checkNameId(ctx: AcsContext): void {
    const read = (assertion: Element): string => {
      const subject = firstChild(assertion, NS.assertion, 'Subject');
      const ids = subject ? childElements(subject, NS.assertion, 'NameID') : [];
      if (ids.length !== 1) throw reject('name_id_invalid', `${ids.length} NameID elements`);
      const text = plainText(ids[0]!);
      if (text === null) throw reject('name_id_invalid', 'NameID holds more than text');
      return text;
    };
    const verified = read(need(ctx.assertion, 'assertion'));
    const posted = read(need(ctx.rawAssertion, 'rawAssertion'));
    const value = verified.trim();
    if (posted !== verified) throw reject('name_id_invalid', 'posted NameID differs from the signed one');
    if (value.length === 0 || value.length > NAME_ID_MAX) throw reject('name_id_invalid', 'NameID empty or too long');
    if (/[\u0000-\u001f\u007f]/.test(value)) throw reject('name_id_invalid', 'control characters in NameID');
    ctx.nameId = value;
  }

  // The assertion ID is remembered (SET NX) until the assertion expires: a second use is refused,
  // across every gateway process sharing the store. The member lookup needs nothing this check
  // decides and only reads, so it is sent along (one round trip instead of two); a replay is
  // reported first, and the lookup's own outcome is taken in result().
  private async checkReplay(ctx: AcsContext): Promise<void> {
    const assertion = need(ctx.assertion, 'assertion');
    const id = need(attr(assertion, 'ID'), 'assertion ID');
    const now = this.deps.clock.now();
    const limits = [
      ...this.bearerConfirmationData(assertion).map((d) => parseInstant(attr(d, 'NotOnOrAfter'))),
      parseInstant(attr(this.conditions(ctx), 'NotOnOrAfter')),
    ].filter((t): t is number => t !== null && Number.isFinite(t));
    const until = limits.length ? Math.max(...limits) + this.deps.clockSkewMs : now + this.deps.replayWindowMs;
    const ttlMs = Math.min(Math.max(until - now, 60_000), this.deps.replayWindowMs);
    const tenant = need(ctx.tenant, 'tenant');
    const key = keys.samlAssertionSeen(tenant.domain, need(ctx.saml, 'saml').idpEntityId, id);
    const member = mapAssertedIdentity(tenant, need(ctx.nameId, 'nameId'), this.deps.members);
    member.catch(() => undefined); // settled in result(); a refusal here must not leave it unhandled
    ctx.member = member;
    const first = await this.deps.store.set(key, String(now), { nx: true, ttlMs });
    if (!first) throw reject('assertion_replayed');
  }
}
