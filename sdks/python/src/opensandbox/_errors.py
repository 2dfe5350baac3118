"""Typed exceptions: one class per API error code, each carrying ``code`` and ``status``.

An exception never holds a secret value: API refusals carry the server's sentence (which never
quotes a value), and transport failures of a request that carried a secret are raised without
the underlying httpx exception (whose ``request`` would hold the body).
"""

from __future__ import annotations

from typing import Dict, Optional, Type


class OpenSandboxError(Exception):
    """Base class of every error this SDK raises."""


class ConfigError(OpenSandboxError):
    """The API URL or key could not be determined, or the config file is malformed."""


class APIConnectionError(OpenSandboxError):
    """The API could not be reached (after the retries the call allows)."""


class APITimeoutError(APIConnectionError):
    """The API did not answer in time; the operation may still complete on the server."""


class APIError(OpenSandboxError):
    """The API refused the request: ``status`` (HTTP) and ``code`` (stable, snake_case)."""

    status: int
    code: str

    def __init__(self, message: str, *, status: int, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code

    def __str__(self) -> str:
        return f"{self.message} (HTTP {self.status}, {self.code})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, code={self.code!r}, message={self.message!r})"


class InvalidInput(APIError):
    """400 ``invalid_input``: malformed input; the message names the field."""


class Unauthorized(APIError):
    """401 ``missing_api_key``: no API key was sent."""


class Forbidden(APIError):
    """403 ``invalid_api_key``: the key is unknown or revoked."""


class NotFound(APIError):
    """404 ``not_found``: no such object in your org."""


class Conflict(APIError):
    """409 ``conflict``: a duplicate name, a busy object, a reused Idempotency-Key."""


class PayloadTooLarge(APIError):
    """413 ``payload_too_large``: a body or value beyond its bound."""


class Unprocessable(APIError):
    """422 ``unprocessable``: well-formed but not acceptable (e.g. a reserved name)."""


class InternalError(APIError):
    """500 ``internal``: the operation failed inside the platform."""


class Unavailable(APIError):
    """503 ``unavailable``: a dependency is down or the gateway has no control plane."""


_BY_CODE: Dict[str, Type[APIError]] = {
    "invalid_input": InvalidInput,
    "missing_api_key": Unauthorized,
    "invalid_api_key": Forbidden,
    "not_found": NotFound,
    "conflict": Conflict,
    "payload_too_large": PayloadTooLarge,
    "unprocessable": Unprocessable,
    "internal": InternalError,
    "unavailable": Unavailable,
}

_BY_STATUS: Dict[int, Type[APIError]] = {
    400: InvalidInput,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: Unprocessable,
    500: InternalError,
    503: Unavailable,
}


def error_for(status: int, code: Optional[str], message: str) -> APIError:
    """The typed exception of an API refusal (by code, else by status)."""
    cls = _BY_CODE.get(code or "") or _BY_STATUS.get(status) or APIError
    return cls(message, status=status, code=code or f"http_{status}")
