/**
 * Typed errors: one class per API error code, each carrying `code` and `status`. An error never
 * holds a secret value: refusals carry the server's sentence (which never quotes a value), and a
 * transport failure of a request that carried a secret keeps no `cause` (which could reference
 * the request).
 */
/** Base class of every error this SDK throws. */
export declare class OpenSandboxError extends Error {
    constructor(message: string);
}
/** The API URL or key could not be determined, or the config file is malformed. */
export declare class ConfigError extends OpenSandboxError {
}
/** The API could not be reached (after the retries the call allows). */
export declare class APIConnectionError extends OpenSandboxError {
}
/** The API did not answer in time; the operation may still complete on the server. */
export declare class APITimeoutError extends APIConnectionError {
}
/** The API refused the request: `status` (HTTP) and `code` (stable, snake_case). */
export declare class APIError extends OpenSandboxError {
    readonly status: number;
    readonly code: string;
    constructor(message: string, status: number, code: string);
}
/** 400 `invalid_input`: malformed input; the message names the field. */
export declare class InvalidInput extends APIError {
}
/** 401 `missing_api_key`: no API key was sent. */
export declare class Unauthorized extends APIError {
}
/** 403 `invalid_api_key`: the key is unknown or revoked. */
export declare class Forbidden extends APIError {
}
/** 404 `not_found`: no such object in your org. */
export declare class NotFound extends APIError {
}
/** 409 `conflict`: a duplicate name, a busy object, a reused Idempotency-Key. */
export declare class Conflict extends APIError {
}
/** 413 `payload_too_large`: a body or value beyond its bound. */
export declare class PayloadTooLarge extends APIError {
}
/** 422 `unprocessable`: well-formed but not acceptable (e.g. a reserved name). */
export declare class Unprocessable extends APIError {
}
/** 500 `internal`: the operation failed inside the platform. */
export declare class InternalError extends APIError {
}
/** 503 `unavailable`: a dependency is down or the gateway has no control plane. */
export declare class Unavailable extends APIError {
}
/** The typed error of an API refusal (by code, else by status). */
export declare function errorFor(status: number, code: string | undefined, message: string): APIError;
