import type { MessageKey, Translate } from './i18n';

/** Private refusal reasons (docs/errors.md) we can say in plain words; others are shown as their code only. */
const KNOWN = new Set([
  'bad_password',
  'unknown_account',
  'no_password',
  'account_locked',
  'too_many_failures',
  'sso_enabled',
  'break_glass_disabled',
  'member_not_active',
  'member_not_found',
  'signature_invalid',
  'weak_algorithm',
  'issuer_mismatch',
  'audience_mismatch',
  'destination_mismatch',
  'assertion_expired',
  'assertion_not_yet_valid',
  'assertion_replayed',
  'status_not_success',
  'unsolicited_refused',
  'transaction_expired',
  'transaction_unknown_or_used',
  'binding_cookie_missing',
  'binding_mismatch',
  'idp_error',
  'token_error',
  'oidc_id_token_invalid',
  'rate_limited',
  'mdm_other_domain_restricted',
]);

/** The reason in plain words, or null when we have none for it. */
export function reasonLabel(t: Translate, reason: string): string | null {
  return KNOWN.has(reason) ? t(`reason.${reason}` as MessageKey) : null;
}
