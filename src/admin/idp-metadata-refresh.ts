import { X509Certificate } from 'node:crypto';
import type { Clock } from '../domain/clock.js';
import type { SamlSettings, Tenant } from '../domain/tenant.js';
import type { TenantRepository } from '../domain/tenants.js';
import { AppError, isAppError } from '../errors/index.js';
import type { AuditEvent, AuditLog } from '../observability/audit.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { OutboundPolicy } from '../sso/oauth/outbound-policy.js';
import { SignatureRefused, verifyEnvelopedSignature } from '../sso/saml/enveloped-signature.js';
import { applyIdpMetadata, parseIdpMetadata, type IdpMetadata } from '../sso/saml/idp-metadata.js';
import { METADATA_LIMITS, XmlRefused, parseUntrustedXml } from '../sso/saml/xml.js';
import { keys, type KeyValueStore } from '../store/index.js';
import { IDP_METADATA_CLAIM_TTL_MS } from '../store/keys.js';
import { fetchMetadata } from './metadata-fetch.js';

/** config.saml.metadataRefresh. */
export interface MetadataRefreshSettings {
  enabled: boolean;
  intervalMinutes: number;
  jitterPercent: number;
  backoffFirstSeconds: number;
  backoffMaxSeconds: number;
  checkEverySeconds: number;
}

/** What is stored per tenant (keys.idpMetadataRefresh) and shown by GET …/sso. Times are ms. */
export interface RefreshStatus {
  lastAttemptAt: number | null;
  lastSuccessAt: number | null;
  /** The last failure, cleared by a success. `reason` is the fetch's or parser's short reason. */
  lastError: { at: number; code: string; reason: string; message: string } | null;
  /** Failures in a row (the backoff's exponent). */
  failures: number;
  nextDueAt: number;
}

export type RefreshOutcome = { result: 'unchanged' | 'updated'; added: string[]; removed: string[]; tenant: Tenant; status: RefreshStatus };

/** Who asked: the scheduler, or an administrator (the audit event's actor, request id and IP). */
export type RefreshActor = Pick<AuditEvent, 'actor' | 'requestId' | 'ip'>;

const SCHEDULER: RefreshActor = { actor: 'scheduler' };
/** Tenants read at once when looking for due refreshes. */
const READ_BATCH = 50;

/**
 * A fetched metadata document, checked before it is parsed for use: when the tenant requires signed
 * metadata, the root element must carry an enveloped signature (RSA-SHA256 or stronger, exclusive
 * c14n, referencing the root) that verifies with the pinned certificate; the document's own KeyInfo
 * is never trusted. A document whose root `validUntil` has passed is refused. On a refresh (`sameIdp`)
 * the document must describe the tenant's IdP (same entityID).
 */
export function readFetchedMetadata(xml: string, saml: Partial<SamlSettings> | undefined, options: { sameIdp: boolean; now: number }): IdpMetadata {
  // The checks of an import first (they name what is wrong with a malformed document) …
  const metadata = parseIdpMetadata(xml);
  let doc: Document;
  try {
    doc = parseUntrustedXml(xml, METADATA_LIMITS);
  } catch (err) {
    if (err instanceof XmlRefused) throw new AppError('idp_metadata_invalid', { detail: err.kind, reason: err.kind, message: 'The identity provider metadata could not be used: the XML is malformed or refused.' });
    throw err;
  }
  // … then the signature over the very document the parse read …
  if (saml?.requireSignedMetadata) {
    const pinned = saml.metadataSigningCertificate;
    if (!pinned) throw new AppError('idp_metadata_signature_invalid', { detail: 'requireSignedMetadata without a metadataSigningCertificate', reason: 'no_pinned_certificate' });
    let covered: string | null;
    try {
      covered = verifyEnvelopedSignature(doc.documentElement, { certificates: [pinned], allowSha1: false });
    } catch (err) {
      if (err instanceof SignatureRefused) throw new AppError('idp_metadata_signature_invalid', { detail: err.message, reason: 'signature_invalid' });
      throw err;
    }
    if (covered === null) throw new AppError('idp_metadata_unsigned', { detail: 'metadata root carries no signature', reason: 'unsigned' });
  }
  // … its validUntil (SAML metadata §2.3.1: not to be used after it; an old signed copy served again is refused) …
  const validUntil = Date.parse(doc.documentElement.getAttribute('validUntil') ?? '');
  if (Number.isFinite(validUntil) && validUntil <= options.now) {
    throw new AppError('idp_metadata_invalid', {
      detail: `validUntil ${new Date(validUntil).toISOString()} has passed`,
      reason: 'metadata_expired',
      message: 'The identity provider metadata could not be used: its validUntil has passed.',
    });
  }
  // … and, on a refresh, the IdP must still be the tenant's.
  if (options.sameIdp && saml?.idpEntityId && metadata.entityId !== saml.idpEntityId) {
    throw new AppError('idp_metadata_invalid', {
      detail: `entityID changed to ${metadata.entityId.slice(0, 200)}`,
      reason: 'entity_id_changed',
      message: 'The identity provider metadata could not be used: it describes another IdP (its entityID is not the configured one).',
    });
  }
  return metadata;
}

const fingerprint = (pem: string): string => {
  try {
    return new X509Certificate(pem).fingerprint256;
  } catch {
    return 'unreadable';
  }
};

/**
 * Keeps every tenant's IdP metadata current from the URL it was imported from (docs/spec.md, "IdP
 * metadata refresh"). Each gateway process runs `tick()` every `checkEverySeconds`: a tenant whose next
 * due time has come is claimed with SET NX PX on a key naming that due time, so one process fetches
 * per due time however many run. A valid document replaces the signing certificates (and endpoints)
 * with the ones it lists; a fetch that fails, is malformed, lists no signing certificate, names another
 * IdP, or is unsigned when signing is required changes nothing and is retried with backoff. Changes
 * and failures go to the tenant's audit trail.
 */
export class IdpMetadataRefresher {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;

  constructor(
    private readonly deps: {
      store: KeyValueStore;
      clock: Clock;
      tenants: TenantRepository;
      audit: AuditLog;
      metrics: Metrics;
      logger: Logger;
      policy: OutboundPolicy;
      allowHttp: boolean;
      settings: MetadataRefreshSettings;
      /** [0, 1): the jitter's draw (tests pin it). */
      random?: () => number;
    },
  ) {}

  /** The next due time after a success: the interval ± the jitter. */
  nextAfterSuccess(now: number): number {
    const { intervalMinutes, jitterPercent } = this.deps.settings;
    const interval = intervalMinutes * 60_000;
    const spread = (interval * jitterPercent) / 100;
    return Math.round(now + interval + ((this.deps.random ?? Math.random)() * 2 - 1) * spread);
  }

  /** The next due time after the `failures`-th failure in a row: first, doubling, capped. */
  nextAfterFailure(now: number, failures: number): number {
    const { backoffFirstSeconds, backoffMaxSeconds } = this.deps.settings;
    return now + Math.min(backoffFirstSeconds * 2 ** Math.min(failures - 1, 30), backoffMaxSeconds) * 1000;
  }

  async status(domain: string): Promise<RefreshStatus | null> {
    const raw = await this.deps.store.get(keys.idpMetadataRefresh(domain));
    return raw ? (JSON.parse(raw) as RefreshStatus) : null;
  }

  /** After an import by URL (the document was just fetched): the next refresh in one interval. */
  async imported(domain: string): Promise<void> {
    const now = this.deps.clock.now();
    await this.writeStatus(domain, { lastAttemptAt: now, lastSuccessAt: now, lastError: null, failures: 0, nextDueAt: this.nextAfterSuccess(now) });
  }

  /** The URL is gone (an XML import, or PATCH saml.idpMetadataUrl: null): nothing to refresh. */
  async forget(domain: string): Promise<void> {
    await this.deps.store.del(keys.idpMetadataRefresh(domain));
  }

  /** POST …/sso/saml/idp-metadata/refresh: fetch now; a failure is recorded, audited and thrown. */
  async refreshNow(tenant: Tenant, actor: RefreshActor): Promise<RefreshOutcome> {
    if (!tenant.sso.saml?.idpMetadataUrl) throw new AppError('idp_metadata_url_missing', { detail: `tenant ${tenant.domain} has no idpMetadataUrl` });
    const outcome = await this.refresh(tenant, actor);
    if (outcome instanceof AppError) throw outcome;
    return outcome;
  }

  /**
   * One pass over the tenants: each one with a metadata URL whose due time has come is claimed and
   * fetched (one at a time: a pass is background work). Returns how many this process fetched.
   */
  async tick(): Promise<number> {
    if (this.running) return this.running;
    this.running = this.pass().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async pass(): Promise<number> {
    const { store, clock, tenants } = this.deps;
    let fetched = 0;
    const domains = await tenants.listDomains();
    for (let i = 0; i < domains.length; i += READ_BATCH) {
      // Which tenants are due: one MGET of its own slot per tenant, READ_BATCH at once.
      const due = (
        await Promise.all(
          domains.slice(i, i + READ_BATCH).map(async (domain) => {
            const [tenantRaw, statusRaw] = await store.mGet([keys.tenant(domain), keys.idpMetadataRefresh(domain)]);
            if (!tenantRaw || !(JSON.parse(tenantRaw) as Tenant).sso.saml?.idpMetadataUrl) return null;
            const dueAt = statusRaw ? (JSON.parse(statusRaw) as RefreshStatus).nextDueAt : 0;
            return dueAt <= clock.now() ? { domain, dueAt } : null;
          }),
        )
      ).filter((d) => d !== null);
      fetched += await this.fetchDue(due);
    }
    return fetched;
  }

  /** Claims each due time and fetches the ones this process won, one at a time (background work). */
  private async fetchDue(due: Array<{ domain: string; dueAt: number }>): Promise<number> {
    const { store, clock, tenants } = this.deps;
    let fetched = 0;
    for (const { domain, dueAt } of due) {
      if (!(await store.set(keys.idpMetadataRefreshClaim(domain, dueAt), String(clock.now()), { nx: true, ttlMs: IDP_METADATA_CLAIM_TTL_MS }))) continue;
      const tenant = await tenants.find(domain);
      if (!tenant?.sso.saml?.idpMetadataUrl) continue;
      fetched++;
      try {
        await this.refresh(tenant, SCHEDULER);
      } catch (err) {
        // The store failed while recording: the claim expires and a later pass tries again.
        this.deps.logger.error({ err, domain }, 'IdP metadata refresh could not be recorded');
      }
    }
    return fetched;
  }

  /** The fetch and its bookkeeping; a failure is returned (already recorded), not thrown. */
  private async refresh(tenant: Tenant, actor: RefreshActor): Promise<RefreshOutcome | AppError> {
    const { clock, audit, metrics } = this.deps;
    const domain = tenant.domain;
    const url = tenant.sso.saml!.idpMetadataUrl!;
    const previous = await this.status(domain);
    let metadata: IdpMetadata;
    let xml: string;
    try {
      xml = await fetchMetadata(url, { policy: this.deps.policy, allowHttp: this.deps.allowHttp });
      metadata = readFetchedMetadata(xml, tenant.sso.saml, { sameIdp: true, now: clock.now() });
    } catch (err) {
      const failure = isAppError(err) ? err : new AppError('metadata_fetch_failed', { detail: err instanceof Error ? err.message : 'error', reason: 'error', cause: err });
      const reason = failure.reason ?? failure.code;
      const now = clock.now();
      const failures = (previous?.failures ?? 0) + 1;
      const status: RefreshStatus = {
        lastAttemptAt: now,
        lastSuccessAt: previous?.lastSuccessAt ?? null,
        lastError: { at: now, code: failure.code, reason, message: failure.publicMessage },
        failures,
        nextDueAt: this.nextAfterFailure(now, failures),
      };
      await this.writeStatus(domain, status);
      metrics.idpMetadataRefreshes.inc({ result: 'failed' });
      this.deps.logger.warn({ domain, code: failure.code, reason, detail: failure.detail, failures }, 'IdP metadata refresh failed; the stored certificates stay');
      await audit.record({ ...actor, type: 'idp_metadata.refresh_failed', domain, reason, data: { code: failure.code, failures, nextDueAt: new Date(status.nextDueAt).toISOString() } });
      return failure;
    }

    // Applied to the tenant as it is now (an administrator may have changed it during the fetch).
    const current = (await this.deps.tenants.find(domain)) ?? tenant;
    const before = current.sso.saml?.idpCertificates ?? [];
    const next = applyIdpMetadata(current.sso, metadata, xml);
    const after = next.saml?.idpCertificates ?? [];
    const added = after.filter((c) => !before.includes(c)).map(fingerprint);
    const removed = before.filter((c) => !after.includes(c)).map(fingerprint);
    const endpointsChanged = next.webLoginUrl !== current.sso.webLoginUrl || next.saml?.idpSloUrl !== current.sso.saml?.idpSloUrl || next.saml?.signAuthnRequests !== current.sso.saml?.signAuthnRequests;
    const changed = added.length > 0 || removed.length > 0 || endpointsChanged;
    const saved = changed ? await this.deps.tenants.save({ ...current, sso: next }) : current;
    const now = clock.now();
    const status: RefreshStatus = { lastAttemptAt: now, lastSuccessAt: now, lastError: null, failures: 0, nextDueAt: this.nextAfterSuccess(now) };
    await this.writeStatus(domain, status);
    metrics.idpMetadataRefreshes.inc({ result: changed ? 'updated' : 'unchanged' });
    if (changed) {
      this.deps.logger.info({ domain, added, removed }, 'IdP metadata refreshed: certificates or endpoints changed');
      await audit.record({
        ...actor,
        type: 'idp_metadata.refreshed',
        domain,
        data: { added: added.join(','), removed: removed.join(','), certificates: after.length, endpointsChanged },
      });
    }
    return { result: changed ? 'updated' : 'unchanged', added, removed, tenant: saved, status };
  }

  private async writeStatus(domain: string, status: RefreshStatus): Promise<void> {
    await this.deps.store.set(keys.idpMetadataRefresh(domain), JSON.stringify(status));
  }

  /** Runs tick() every checkEverySeconds (unref'd: it never keeps a process alive). */
  start(onError: (err: unknown) => void): void {
    if (!this.deps.settings.enabled || this.timer) return;
    this.timer = setInterval(() => void this.tick().catch(onError), this.deps.settings.checkEverySeconds * 1000);
    this.timer.unref();
  }

  /** Stops the timer and waits for a pass under way. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.idle();
  }

  /** Resolves when no pass is under way (the timer's included). */
  async idle(): Promise<void> {
    await this.running?.catch(() => undefined);
  }
}

/** GET …/sso's `idpMetadataRefresh`: null without a URL; times as ISO strings. */
export function refreshStatusView(saml: Partial<SamlSettings> | undefined, status: RefreshStatus | null): Record<string, unknown> | null {
  if (!saml?.idpMetadataUrl) return null;
  const iso = (ms: number | null | undefined): string | null => (ms === null || ms === undefined ? null : new Date(ms).toISOString());
  return {
    url: saml.idpMetadataUrl,
    lastAttemptAt: iso(status?.lastAttemptAt),
    lastSuccessAt: iso(status?.lastSuccessAt),
    lastError: status?.lastError ? { at: iso(status.lastError.at), code: status.lastError.code, reason: status.lastError.reason, message: status.lastError.message } : null,
    failures: status?.failures ?? 0,
    // Never fetched through the schedule yet: due at the next check.
    nextDueAt: iso(status?.nextDueAt ?? 0),
  };
}
