/**
 * The registry of every public error code. A code is part of the contract: clients and tests match on
 * it, so it never changes meaning. `message` is the sentence a person sees; internal reasons never go
 * here (they travel as `detail` on the error and reach only logs and the audit trail).
 * A test checks that every code is documented in docs/errors.md and that no documented code is stale.
 */
export const ERROR_CODES = {
  // generic
  bad_request: { status: 400, message: 'The request is not valid.' },
  not_found: { status: 404, message: 'Nothing is here.' },
  payload_too_large: { status: 413, message: 'The request body is too large.' },
  unsupported_media_type: { status: 415, message: 'The request body has an unsupported content type.' },
  internal_error: { status: 500, message: 'Something went wrong on our side. Please try again later.' },
  store_unavailable: { status: 503, message: 'The service is temporarily unavailable. Please try again in a moment.' },
  // tenants and entry route (S-4 … S-6)
  tenant_not_found: { status: 404, message: 'This organisation is not registered for sign-in here.' },
  invalid_access_url: { status: 400, message: 'The address to return to after sign-in is not allowed.' },
  sso_not_enabled: { status: 400, message: 'Single sign-on is not enabled for this organisation.' },
  sso_misconfigured: {
    status: 409,
    message: 'Single sign-on for this organisation is not set up completely. Please contact your administrator.',
  },
  // login transactions and SAML (S-7 … S-12)
  login_transaction_invalid: {
    status: 400,
    message: 'This sign-in attempt has expired or was already used. Please start signing in again.',
  },
  login_not_bound: {
    status: 403,
    message:
      'This sign-in was started in another browser, or your browser blocked a cookie that sign-in needs, so it was stopped to protect your account. Please start signing in again in this browser.',
  },
  saml_response_invalid: {
    status: 400,
    message: 'Your identity provider sent a sign-in response that could not be accepted.',
  },
  saml_logout_invalid: {
    status: 400,
    message: 'The sign-out message from your identity provider could not be accepted.',
  },
  unsolicited_response_refused: {
    status: 400,
    message: 'Sign-in must start from this site. Please open the sign-in link again.',
  },
  oauth_login_failed: {
    status: 400,
    message: 'Signing in with your identity provider did not succeed. Please try again.',
  },
  idp_unavailable: {
    status: 502,
    message: 'Your identity provider did not answer in time. Please try again in a moment.',
  },
  test_sign_in_invalid: {
    status: 400,
    message: 'This test sign-in link has expired or was already used. Please start a new test sign-in from the console.',
  },
  rate_limited: { status: 429, message: 'Too many attempts. Please wait a moment and try again.' },
  // admin API and the member directory (docs/spec.md §6, §7, §11)
  unauthorized: { status: 401, message: 'A valid API key or console sign-in is required.' },
  console_session_expired: { status: 401, message: 'Your console session has ended. Please sign in again.' },
  csrf_failed: { status: 403, message: 'This request could not be verified as coming from the console. Please reload the page and try again.' },
  forbidden: { status: 403, message: 'You may not do that.' },
  validation_failed: { status: 400, message: 'Some fields are not valid.' },
  conflict: { status: 409, message: 'This conflicts with the current state.' },
  sso_enabled: { status: 409, message: 'This is not available while single sign-on is on.' },
  sso_required: { status: 409, message: 'This is only available while single sign-on is on.' },
  sso_switch_in_progress: { status: 409, message: 'Single sign-on is being switched right now. Please retry in a moment.' },
  external_key_required: { status: 400, message: 'An external key is required while single sign-on is on.' },
  external_key_conflict: { status: 409, message: 'This external key is already used by another member.' },
  account_conflict: { status: 409, message: 'This account already exists.' },
  unknown_member: { status: 404, message: 'No such member in this organisation.' },
  password_policy_violation: { status: 400, message: 'The password does not meet the password policy.' },
  metadata_fetch_failed: { status: 400, message: 'The metadata URL could not be fetched.' },
  csv_invalid: { status: 400, message: 'The CSV file has errors; nothing was changed.' },
  // password login (S-23)
  invalid_credentials: { status: 401, message: 'The account or password is not correct.' },
  account_locked: { status: 429, message: 'Too many failed sign-ins. Please wait and try again.' },
  csrf_token_invalid: { status: 403, message: 'This form has expired or could not be verified. Please reload the page and try again.' },
  invitation_invalid: {
    status: 400,
    message: 'This invitation link is not valid: it was already used, has expired or was withdrawn. Please ask your administrator for a new one.',
  },
  // MDM sync and MDM keys (M-1 … M-14)
  plan_required: { status: 403, message: 'This feature needs the Standard or Advanced plan.' },
  mdm_external_required: { status: 409, message: 'This is only available while 3rd-party MDM sync is on.' },
  mdm_key_not_unique: {
    status: 409,
    message: 'This key value is not unique: restricting logins with other-domain accounts needs a key value no other organisation uses.',
  },
  mdm_key_limit: { status: 409, message: 'An organisation can hold at most 5 active MDM keys. Revoke one first.' },
  mdm_key_not_found: { status: 404, message: 'No such MDM key in this organisation.' },
  mdm_last_key: {
    status: 409,
    message: 'No other key would let devices sign in. Name a replacement (a new key, or a scheduled key to bring forward) to revoke this one.',
  },
  mdm_builtin_excluded: { status: 409, message: 'Built-in MDM exceptions cannot be set while 3rd-party MDM sync is on: the two never hold at once.' },
  mdm_builtin_exception_not_found: { status: 404, message: 'No such built-in MDM exception in this organisation.' },
  mdm_code_required: { status: 403, message: 'This app must be installed through your organisation\'s device management to sign in.' },
  mdm_code_mismatch: { status: 403, message: 'This device is not managed by your organisation\'s device management, so the app cannot sign in here.' },
  mdm_other_domain_restricted: { status: 403, message: 'This managed device may only be used with accounts of the organisation that manages it.' },
  // mapping (S-1 … S-3)
  member_not_found: { status: 403, message: 'Your account is not registered in this organisation.' },
  member_not_active: { status: 403, message: 'Your account is not active. Please contact your administrator.' },
  // sessions
  not_authenticated: { status: 401, message: 'You are not signed in.' },
  // IdP metadata and certificates (S-12)
  idp_metadata_invalid: { status: 400, message: 'The identity provider metadata could not be used.' },
  certificate_not_pem: {
    status: 400,
    message: 'The certificate is not in PEM format. Please convert it to PEM (Base64 text starting with -----BEGIN CERTIFICATE-----).',
  },
  certificate_invalid: { status: 400, message: 'The certificate could not be read.' },
  // j-events
  webhook_url_refused: { status: 400, message: 'The webhook URL cannot be used: it must be an https URL of a public host, without credentials.' },
  webhook_not_configured: { status: 404, message: 'No webhook is set for this organisation.' },
  // c-saml-meta
  idp_metadata_url_missing: { status: 409, message: 'This domain has no IdP metadata URL to refresh from.' },
  idp_metadata_unsigned: { status: 400, message: 'The identity provider metadata is not signed, and this domain requires signed metadata.' },
  idp_metadata_signature_invalid: { status: 400, message: 'The signature of the identity provider metadata does not verify with the pinned certificate.' },
  // g-scim
  scim_unauthorized: { status: 401, message: 'The SCIM bearer token is missing, unknown, revoked, or not valid for this domain.' },
  scim_invalid_filter: { status: 400, message: 'The SCIM filter is not valid or not supported.' },
  scim_invalid_syntax: { status: 400, message: 'The SCIM request is not valid.' },
  scim_invalid_value: { status: 400, message: 'A SCIM attribute has a value that is not allowed.' },
  scim_invalid_path: { status: 400, message: 'A SCIM PATCH path is not valid or names nothing.' },
  scim_mutability: { status: 400, message: 'This SCIM attribute cannot be changed.' },
  scim_too_many: { status: 400, message: 'The SCIM request asks for too much at once.' },
  scim_uniqueness: { status: 409, message: 'Another resource already has this userName, externalId or displayName.' },
  scim_precondition_failed: { status: 412, message: 'The resource changed since the version given in If-Match.' },
  scim_resource_not_found: { status: 404, message: 'No such SCIM resource in this domain.' },
  scim_super_admin_protected: { status: 403, message: 'A super admin cannot be changed, deactivated or deleted through SCIM.' },
  scim_token_limit: { status: 409, message: 'A domain can hold at most 10 SCIM tokens. Revoke one first.' },
  // d-saml-authn
  default_service_url_required: {
    status: 400,
    message: 'IdP-initiated sign-in needs a default service URL: set one for the organisation (or the gateway) first, or leave unsolicited sign-in off.',
  },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * Private reasons for a refused SAML response (S-8). They are logged and audited, never shown: an
 * attacker probing the ACS learns only `saml_response_invalid`.
 */
export const SAML_REJECT_REASONS = [
  'response_missing',
  'response_not_base64',
  'response_too_large',
  'doctype_refused',
  'xml_malformed',
  'xml_too_complex',
  'not_a_response',
  'assertion_missing',
  'multiple_assertions',
  'encrypted_assertion_unsupported',
  'weak_algorithm',
  'signature_invalid',
  'status_not_success',
  'issuer_mismatch',
  'in_response_to_mismatch',
  'destination_mismatch',
  'recipient_mismatch',
  'bearer_confirmation_missing',
  'audience_mismatch',
  'assertion_expired',
  'assertion_not_yet_valid',
  'assertion_too_old',
  'name_id_invalid',
  'assertion_replayed',
  'second_gate_refused',
  'second_gate_disagrees',
  // b-saml-enc
  'decryption_failed',
  'encryption_algorithm_unsupported',
  'assertion_not_encrypted',
  // a-saml-sigs
  'assertion_not_signed',
] as const;

export type SamlRejectReason = (typeof SAML_REJECT_REASONS)[number];

/** Private reasons of a refused SAML logout message (S-13), logged and audited, never shown. */
export const SAML_LOGOUT_REJECT_REASONS = [
  'message_missing',
  'message_malformed',
  'message_too_complex',
  'issuer_unknown',
  'signature_missing',
  'signature_invalid',
  'weak_algorithm',
  'destination_mismatch',
  'in_response_to_mismatch',
  'logout_transaction_invalid',
  'message_expired',
  'message_replayed',
  'name_id_invalid',
  'session_index_invalid',
] as const;

/**
 * Private reasons of a failed OAuth / OIDC login (S-15 … S-17), logged and audited, never shown.
 * `token_*`, `userinfo_*` and `oidc_*` reasons also take the outbound failures (`OutboundFailure`:
 * `token_outbound_refused`, `userinfo_idp_unreachable` …), coarse on purpose.
 */
export const OAUTH_REJECT_REASONS = [
  'state_missing',
  'idp_error',
  'code_missing',
  'token_http_error',
  'token_error',
  'token_access_token_missing',
  'userinfo_http_error',
  'userinfo_access_denied',
  'userinfo_invalid_request',
  'userinfo_unauthorized_client',
  'userinfo_invalid_access',
  'userinfo_error',
  'userinfo_user_id_missing',
  'oidc_discovery_failed',
  'oidc_response_invalid',
  'oidc_id_token_invalid',
  'oidc_id_token_issued_in_future',
  'oidc_user_key_missing',
  // f-check-oauth
  'oidc_userinfo_subject_mismatch',
  'oidc_userinfo_invalid',
  'token_type_not_bearer',
] as const;

/**
 * Private reasons of `login_not_bound` (a login transaction answered from a browser that did not start
 * it: login CSRF / session swap), logged and audited, never shown.
 */
export const LOGIN_BINDING_REJECT_REASONS = ['binding_cookie_missing', 'binding_cookie_malformed', 'binding_mismatch', 'transaction_unbound'] as const;

export type LoginBindingRejectReason = (typeof LOGIN_BINDING_REJECT_REASONS)[number];
