"""What the sync and async clients share: how a call is described (``Call``), which failures
are retried and how long to wait (``RetryPolicy``), and how an answer becomes a value or a typed
exception. Nothing here does I/O.

Retries: a call that never reached the server (connection refused, connect timeout) is always
retried; an idempotent call (GET, PUT, DELETE, and a create that carries an Idempotency-Key) is
also retried after a dropped connection, a read timeout or a 429/502/503/504, with exponential
backoff and jitter (``Retry-After`` honoured). A call that carries a secret value is retried only
when it never left: the value is sent once.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

import httpx

from ._errors import APIConnectionError, APITimeoutError, error_for

VERSION = "0.1.0"
USER_AGENT = f"opensandbox-python/{VERSION}"

#: Seconds a quick call (get, list, delete, secrets) may take.
QUICK_TIMEOUT = 30.0
#: Seconds a call that boots, restores, snapshots or destroys a sandbox may take.
LONG_TIMEOUT = 300.0
#: Statuses an idempotent call is retried after.
RETRY_STATUSES = frozenset({429, 502, 503, 504})


@dataclass
class Call:
    """One API call: method, path under ``/api``, JSON body, query and retry class."""

    method: str
    path: str
    json: Any = None
    params: Optional[Dict[str, Any]] = None
    timeout: float = QUICK_TIMEOUT
    idempotent: bool = False
    #: The body holds a secret value: retry only when nothing was sent, never chain httpx errors.
    secret: bool = field(default=False, repr=False)
    headers: Dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, path: str, body: Any, timeout: float = LONG_TIMEOUT) -> "Call":
        """A create with a fresh Idempotency-Key: a retried create returns the first sandbox."""
        return cls("POST", path, json=body, timeout=timeout, idempotent=True,
                   headers={"Idempotency-Key": f"py-{uuid.uuid4()}"})


@dataclass
class RetryPolicy:
    """How many times and how long to wait between tries."""

    max_retries: int = 3
    base_delay: float = 0.25
    max_delay: float = 8.0

    def delay(self, attempt: int, retry_after: Optional[str] = None) -> float:
        if retry_after:
            try:
                return min(self.max_delay, max(0.0, float(retry_after)))
            except ValueError:
                pass
        ceiling = min(self.max_delay, self.base_delay * (2 ** attempt))
        return ceiling / 2 + random.random() * ceiling / 2


def never_sent(error: Exception) -> bool:
    """The request never reached the server."""
    return isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout))


def should_retry(call: Call, error: Optional[Exception], status: Optional[int]) -> bool:
    if error is not None:
        if never_sent(error):
            return True
        return call.idempotent and not call.secret and isinstance(
            error, (httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
        )
    return call.idempotent and not call.secret and status in RETRY_STATUSES


def transport_error(call: Call, base_url: str, error: Exception) -> Exception:
    """Our exception for a transport failure, never holding a request that carried a secret."""
    what = f"{call.method} {call.path}"
    if isinstance(error, httpx.TimeoutException) and not never_sent(error):
        return APITimeoutError(f"the API at {base_url} did not answer {what} in time; it may still complete on the server")
    return APIConnectionError(f"cannot reach the API at {base_url} for {what}: {type(error).__name__}")


class Retrying:
    """The retry decisions of one call, shared by the sync and async clients (no I/O)."""

    def __init__(self, call: Call, policy: RetryPolicy, base_url: str) -> None:
        self.call = call
        self.policy = policy
        self.base_url = base_url
        self.attempt = 0

    def again(self, error: Optional[Exception], response: Optional[httpx.Response]) -> Optional[float]:
        """Seconds to wait before another try, or None when this outcome is final."""
        status = response.status_code if response is not None else None
        if self.attempt >= self.policy.max_retries or not should_retry(self.call, error, status):
            return None
        retry_after = response.headers.get("retry-after") if response is not None else None
        delay = self.policy.delay(self.attempt, retry_after)
        self.attempt += 1
        return delay

    def finish(self, error: Optional[Exception], response: Optional[httpx.Response]) -> httpx.Response:
        """The successful response, or the typed exception of the final outcome."""
        if error is not None:
            # A secret-carrying request is never chained: the httpx error holds the request.
            raise transport_error(self.call, self.base_url, error) from (None if self.call.secret else error)
        assert response is not None
        raise_for(response)
        return response


class EventStreamState:
    """What an event stream keeps between connections: the parser (with the last event id the
    server gave, sent back as ``Last-Event-ID``) and the backoff."""

    def __init__(self, policy: RetryPolicy, subject: Optional[str], last_event_id: Optional[str]) -> None:
        from ._sse import SseParser

        self.policy = policy
        self.params = {"subject": subject} if subject else None
        self.parser = SseParser()
        self.parser.last_event_id = last_event_id
        self.attempt = 0

    def headers(self) -> Dict[str, str]:
        headers = {"Accept": "text/event-stream"}
        if self.parser.last_event_id is not None:
            headers["Last-Event-ID"] = self.parser.last_event_id
        return headers

    def refused(self, response: httpx.Response, reconnect: bool) -> bool:
        """Whether an error answer is final (raised) rather than a reason to reconnect."""
        return response.status_code < 500 or not reconnect

    def opened(self) -> None:
        self.attempt = 0

    def next_delay(self) -> float:
        delay = self.policy.delay(self.attempt)
        if self.parser.retry_ms is not None:
            delay = max(delay, self.parser.retry_ms / 1000)
        self.attempt = min(self.attempt + 1, 6)
        return delay


def raise_for(response: httpx.Response) -> None:
    """Raises the typed exception of a refusal."""
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        body = {}
    message = body.get("error") if isinstance(body, dict) else None
    code = body.get("code") if isinstance(body, dict) else None
    raise error_for(response.status_code, code, message or f"the API answered HTTP {response.status_code}")


def headers(api_key: Optional[str]) -> Dict[str, str]:
    out = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if api_key:
        out["X-API-Key"] = api_key
    return out


def page_params(limit: Optional[int], cursor: Optional[str]) -> Dict[str, Any]:
    params: Dict[str, Any] = {}
    if limit is not None:
        params["limit"] = limit
    if cursor is not None:
        params["cursor"] = cursor
    return params


def quote(segment: str) -> str:
    """A path segment, percent-encoded (ids and names never need it; typos might)."""
    from urllib.parse import quote as _quote

    return _quote(segment, safe="")


def drop_none(body: Dict[str, Any]) -> Dict[str, Any]:
    return {key: value for key, value in body.items() if value is not None}


def project_body(
    name: Optional[str] = None,
    *,
    template: Optional[str] = None,
    cpu_count: Optional[int] = None,
    memory_mb: Optional[int] = None,
    timeout_sec: Optional[int] = None,
    egress_allowlist: Optional[list] = None,
    runtime: Optional[str] = None,
) -> Dict[str, Any]:
    return drop_none({
        "name": name, "template": template, "cpuCount": cpu_count, "memoryMB": memory_mb,
        "timeoutSec": timeout_sec, "egressAllowlist": egress_allowlist, "runtime": runtime,
    })


def sandbox_body(
    project: Any = None,
    *,
    template: Optional[str] = None,
    snapshot: Optional[str] = None,
    envs: Optional[Dict[str, str]] = None,
    cpu_count: Optional[int] = None,
    memory_mb: Optional[int] = None,
    timeout_sec: Optional[int] = None,
    metadata: Optional[Dict[str, str]] = None,
    runtime: Optional[str] = None,
) -> Dict[str, Any]:
    reference = getattr(project, "id", project)
    return drop_none({
        "project": reference, "template": template, "snapshot": snapshot, "envs": envs,
        "cpuCount": cpu_count, "memoryMB": memory_mb, "timeoutSec": timeout_sec,
        "metadata": metadata, "runtime": runtime,
    })


def exec_body(cmd: Any, env: Optional[Dict[str, str]], cwd: Optional[str], timeout_sec: Optional[int]) -> Dict[str, Any]:
    command = [cmd] if isinstance(cmd, str) else list(cmd)
    if isinstance(cmd, str):
        command = ["sh", "-c", cmd]
    return drop_none({"cmd": command, "env": env, "cwd": cwd, "timeoutSec": timeout_sec})


def exec_timeout(timeout_sec: Optional[int]) -> float:
    return float(timeout_sec or 60) + 30.0
