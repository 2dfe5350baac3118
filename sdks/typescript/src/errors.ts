/**
 * Typed errors: one class per API error code, each carrying `code` and `status`. An error never
 * holds a secret value: refusals carry the server's sentence (which never quotes a value), and a
 * transport failure of a request that carried a secret keeps no `cause` (which could reference
 * the request).
 */

/** Base class of every error this SDK throws. */
export class OpenSandboxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The API URL or key could not be determined, or the config file is malformed. */
export class ConfigError extends OpenSandboxError {}

/** The API could not be reached (after the retries the call allows). */
export class APIConnectionError extends OpenSandboxError {}

/** The API did not answer in time; the operation may still complete on the server. */
export class APITimeoutError extends APIConnectionError {}

/** The API refused the request: `status` (HTTP) and `code` (stable, snake_case). */
export class APIError extends OpenSandboxError {
  readonly status: number;
  readonly code: string;

  constructor(message: string, status: number, code: string) {
    super(`${message} (HTTP ${status}, ${code})`);
    this.status = status;
    this.code = code;
  }
}

/** 400 `invalid_input`: malformed input; the message names the field. */
export class InvalidInput extends APIError {}
/** 401 `missing_api_key`: no API key was sent. */
export class Unauthorized extends APIError {}
/** 403 `invalid_api_key`: the key is unknown or revoked. */
export class Forbidden extends APIError {}
/** 404 `not_found`: no such object in your org. */
export class NotFound extends APIError {}
/** 409 `conflict`: a duplicate name, a busy object, a reused Idempotency-Key. */
export class Conflict extends APIError {}
/** 413 `payload_too_large`: a body or value beyond its bound. */
export class PayloadTooLarge extends APIError {}
/** 422 `unprocessable`: well-formed but not acceptable (e.g. a reserved name). */
export class Unprocessable extends APIError {}
/** 500 `internal`: the operation failed inside the platform. */
export class InternalError extends APIError {}
/** 503 `unavailable`: a dependency is down or the gateway has no control plane. */
export class Unavailable extends APIError {}

type ErrorClass = new (message: string, status: number, code: string) => APIError;

const BY_CODE: Record<string, ErrorClass> = {
  invalid_input: InvalidInput,
  missing_api_key: Unauthorized,
  invalid_api_key: Forbidden,
  not_found: NotFound,
  conflict: Conflict,
  payload_too_large: PayloadTooLarge,
  unprocessable: Unprocessable,
  internal: InternalError,
  unavailable: Unavailable,
};

const BY_STATUS: Record<number, ErrorClass> = {
  400: InvalidInput,
  401: Unauthorized,
  403: Forbidden,
  404: NotFound,
  409: Conflict,
  413: PayloadTooLarge,
  422: Unprocessable,
  500: InternalError,
  503: Unavailable,
};

/** The typed error of an API refusal (by code, else by status). */
export function errorFor(status: number, code: string | undefined, message: string): APIError {
  const Class = (code && BY_CODE[code]) || BY_STATUS[status] || APIError;
  return new Class(message, status, code || `http_${status}`);
}
