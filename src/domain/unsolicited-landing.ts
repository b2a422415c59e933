import { AppError } from '../errors/index.js';
import type { SsoSettings } from './tenant.js';

/**
 * S-9: an allowed IdP-initiated (unsolicited) login has no target of its own and lands on the default
 * service URL — the tenant's, else the gateway's (`defaultServiceUrl`, which only the demo fills in by
 * itself). A tenant may therefore allow unsolicited logins only when one of the two is set; otherwise
 * `default_service_url_required`, with the field's path.
 */
export function assertUnsolicitedLanding(sso: Pick<SsoSettings, 'type' | 'saml'>, defaultServiceUrl: string | undefined, path = 'saml.allowUnsolicited'): void {
  if (sso.saml?.allowUnsolicited !== true || defaultServiceUrl !== undefined) return;
  const message = 'IdP-initiated logins land on the default service URL: set the organisation\'s defaultServiceUrl (or the gateway\'s DEFAULT_SERVICE_URL) first, or leave allowUnsolicited off.';
  throw new AppError('default_service_url_required', { message, details: [{ path, message }], detail: 'allowUnsolicited without a default service URL' });
}
