import { AppError } from '../errors/index.js';
import { digestForKey, keys, type KeyValueStore } from '../store/index.js';
import { SecretBox } from './secret-box.js';
import { DOMAIN_RE, tenantSchema, type Tenant, type TenantInput } from './tenant.js';

const clientSecretContext = (domain: string): string => `tenant:${domain}:oauth.clientSecret`;

/**
 * Tenant records. Values are validated when written, so reads trust the shape. The OAuth client
 * secret is sealed (AES-GCM, `secretKeys`) in the store and opened on read.
 */
export class TenantRepository {
  constructor(
    private readonly store: KeyValueStore,
    private readonly secrets: SecretBox,
  ) {}

  /** Normalises a domain from a URL; returns null for anything that is not a DNS name. */
  static normaliseDomain(raw: unknown): string | null {
    if (typeof raw !== 'string' || raw.length > 253) return null;
    const d = raw.toLowerCase();
    return DOMAIN_RE.test(d) ? d : null;
  }

  async find(domain: string): Promise<Tenant | null> {
    const raw = await this.store.get(keys.tenant(domain));
    if (raw === null) return null;
    const tenant = JSON.parse(raw) as Tenant;
    const oauth = tenant.sso.oauth;
    if (oauth && SecretBox.isSealed(oauth.clientSecret)) {
      oauth.clientSecret = this.secrets.open(oauth.clientSecret, clientSecretContext(domain));
    }
    return tenant;
  }

  /** Loads the tenant or throws 404 `tenant_not_found`. */
  async load(rawDomain: unknown): Promise<Tenant> {
    const domain = TenantRepository.normaliseDomain(rawDomain);
    const tenant = domain ? await this.find(domain) : null;
    if (!tenant) throw new AppError('tenant_not_found', { detail: `unknown tenant ${String(rawDomain).slice(0, 100)}` });
    return tenant;
  }

  async save(input: TenantInput): Promise<Tenant> {
    const tenant = tenantSchema.parse(input);
    const stored: Tenant = tenant.sso.oauth
      ? {
          ...tenant,
          sso: {
            ...tenant.sso,
            oauth: { ...tenant.sso.oauth, clientSecret: this.secrets.seal(tenant.sso.oauth.clientSecret, clientSecretContext(tenant.domain)) },
          },
        }
      : tenant;
    const previous = await this.store.get(keys.tenant(tenant.domain));
    const previousIdp = previous === null ? undefined : (JSON.parse(previous) as Tenant).sso.saml?.idpEntityId;
    await this.store.set(keys.tenant(tenant.domain), JSON.stringify(stored));
    // IdP-initiated single logout names the IdP, not the tenant: keep an index entity ID → domains.
    const idp = tenant.sso.saml?.idpEntityId;
    if (previousIdp && previousIdp !== idp) await this.store.sRem(keys.samlIdpTenants(digestForKey(previousIdp)), tenant.domain);
    if (idp) await this.store.sAdd(keys.samlIdpTenants(digestForKey(idp)), tenant.domain);
    await this.store.sAdd(keys.tenantIndex(), tenant.domain);
    return tenant;
  }

  async listDomains(): Promise<string[]> {
    return (await this.store.sMembers(keys.tenantIndex())).sort();
  }
}
