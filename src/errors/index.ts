export { AppError, StoreUnavailableError, isAppError, type AppErrorOptions } from './app-error.js';
export {
  ERROR_CODES,
  LOGIN_BINDING_REJECT_REASONS,
  OAUTH_REJECT_REASONS,
  SAML_LOGOUT_REJECT_REASONS,
  SAML_REJECT_REASONS,
  type ErrorCode,
  type LoginBindingRejectReason,
  type SamlRejectReason,
} from './codes.js';
