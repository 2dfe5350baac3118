"""The synchronous client: ``OpenSandbox`` (connection, retries, typed errors, events) and its
resources — projects, sandboxes, snapshots — returning bound objects (``Project``,
``Sandbox``, ``Checkpoint``, ``Snapshot``) whose methods act on the API. Lists follow the
cursor transparently (``list()``) or a page at a time (``list_page()``).

A secret value passes through ``Project.set_secret`` into one request body and nowhere else:
not into an attribute, a ``repr``, a log line or an exception.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Optional, Type, TypeVar, Union

import httpx

from . import _core
from ._config import resolve
from ._core import LONG_TIMEOUT, Call, RetryPolicy
from ._errors import APIError, Unavailable
from ._models import (
    CheckpointInfo, Event, ExecChunk, ExecExit, ExecResult, Page, ProjectInfo, SandboxInfo,
    SecretInfo, SecretSet, SnapshotInfo, _read, exec_line,
)

M = TypeVar("M")


class OpenSandbox:
    """A connection to the API. URL and key: explicit arguments, else ``OPENSANDBOX_API_URL`` /
    ``OPENSANDBOX_API_KEY``, else the ``oc`` config file."""

    _default: Optional["OpenSandbox"] = None

    def __init__(
        self,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        *,
        max_retries: int = 3,
        transport: Optional[httpx.BaseTransport] = None,
        env: Optional[Dict[str, str]] = None,
    ) -> None:
        self.connection = resolve(api_url, api_key, env)
        self.retry = RetryPolicy(max_retries=max_retries)
        self._http = httpx.Client(
            base_url=self.connection.api_url,
            headers=_core.headers(self.connection.api_key),
            transport=transport,
            timeout=_core.QUICK_TIMEOUT,
        )
        self.projects = Projects(self)
        self.sandboxes = Sandboxes(self)
        self.snapshots = Snapshots(self)

    @classmethod
    def default(cls) -> "OpenSandbox":
        """A shared client configured from the environment (used by ``Project.create`` & co)."""
        if cls._default is None:
            cls._default = cls()
        return cls._default

    @property
    def api_url(self) -> str:
        return self.connection.api_url

    def __repr__(self) -> str:
        return f"OpenSandbox(api_url={self.api_url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "OpenSandbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- transport ---------------------------------------------------------------------------

    def send(self, call: Call) -> httpx.Response:
        """Sends ``call`` with its retries; returns a successful response or raises."""
        retrying = _core.Retrying(call, self.retry, self.api_url)
        while True:
            error: Optional[Exception] = None
            response: Optional[httpx.Response] = None
            try:
                response = self._http.request(
                    call.method, "/api" + call.path, json=call.json, params=call.params,
                    headers=call.headers, timeout=call.timeout,
                )
            except httpx.TransportError as caught:
                error = caught
            delay = retrying.again(error, response)
            if delay is None:
                return retrying.finish(error, response)
            time.sleep(delay)

    def call(self, call: Call) -> Any:
        response = self.send(call)
        return response.json() if response.content else None

    @contextmanager
    def stream(self, call: Call, accept: str) -> Iterator[httpx.Response]:
        """Opens a streaming answer (no retry: the caller decides)."""
        try:
            with self._http.stream(
                call.method, "/api" + call.path, json=call.json, params=call.params,
                headers={**call.headers, "Accept": accept}, timeout=httpx.Timeout(call.timeout, read=None),
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    _core.raise_for(response)
                yield response
        except httpx.TransportError as error:
            raise _core.transport_error(call, self.api_url, error) from error

    def pages(self, path: str, parse: Callable[[Dict[str, Any]], M], limit: Optional[int] = None) -> Iterator[M]:
        """Every item of a list, following ``X-Next-Cursor`` page by page."""
        cursor: Optional[str] = None
        while True:
            page = self.page(path, parse, limit, cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def page(self, path: str, parse: Callable[[Dict[str, Any]], M], limit: Optional[int], cursor: Optional[str]) -> Page[M]:
        response = self.send(Call("GET", path, params=_core.page_params(limit, cursor), idempotent=True))
        return Page([parse(item) for item in response.json()], response.headers.get("x-next-cursor"))

    # -- events ------------------------------------------------------------------------------

    def events(
        self,
        subject: Optional[str] = None,
        *,
        last_event_id: Optional[str] = None,
        reconnect: bool = True,
        read_timeout: float = 60.0,
        on_open: Optional[Callable[[], None]] = None,
    ) -> Iterator[Event]:
        """Your org's events as they happen. A dropped stream is reopened with backoff, sending
        ``Last-Event-ID`` when the server gave event ids (so none is missed where it replays);
        refusals (400, 401, 403) are raised, never retried. ``on_open`` is called each time the
        stream is (re)opened: from then on no event is missed. Stop by leaving the loop."""
        state = _core.EventStreamState(self.retry, subject, last_event_id)
        while True:
            try:
                with self._http.stream("GET", "/api/events", params=state.params, headers=state.headers(),
                                       timeout=httpx.Timeout(_core.QUICK_TIMEOUT, read=read_timeout)) as response:
                    if response.status_code >= 400:
                        response.read()
                        if state.refused(response, reconnect):
                            _core.raise_for(response)
                    else:
                        state.opened()
                        if on_open is not None:
                            on_open()
                        for line in response.iter_lines():
                            event = state.parser.line(line)
                            if event is not None:
                                yield event
            except httpx.TransportError as error:
                if not reconnect:
                    raise _core.transport_error(Call("GET", "/events"), self.api_url, error) from error
            except APIError:
                raise
            if not reconnect:
                return
            time.sleep(state.next_delay())


def _bind(cls: Type[M], client: OpenSandbox, data: Dict[str, Any]) -> M:
    obj = cls(**_read(cls, data))
    obj._client = client  # type: ignore[attr-defined]
    return obj


def _client_of(client: Optional[OpenSandbox]) -> OpenSandbox:
    return client if client is not None else OpenSandbox.default()


class Project(ProjectInfo):
    """A project bound to a client."""

    _client: OpenSandbox

    @classmethod
    def create(cls, name: str, *, client: Optional[OpenSandbox] = None, **fields: Any) -> "Project":
        return _client_of(client).projects.create(name, **fields)

    @classmethod
    def get(cls, reference: str, *, client: Optional[OpenSandbox] = None) -> "Project":
        return _client_of(client).projects.get(reference)

    @classmethod
    def list(cls, *, client: Optional[OpenSandbox] = None, limit: Optional[int] = None) -> Iterator["Project"]:
        return _client_of(client).projects.list(limit=limit)

    def _refresh_from(self, other: "Project") -> "Project":
        for attribute in self.WIRE:
            setattr(self, attribute, getattr(other, attribute))
        return self

    def update(self, **fields: Any) -> "Project":
        """PATCH: fields given change, the rest stay (``egress_allowlist=[]`` clears it)."""
        return self._refresh_from(self._client.projects.update(self.id, **fields))

    def replace(self, **fields: Any) -> "Project":
        """PUT: the whole record; fields left out take their defaults (the name stays)."""
        return self._refresh_from(self._client.projects.replace(self.id, **fields))

    def refresh(self) -> "Project":
        return self._refresh_from(self._client.projects.get(self.id))

    def delete(self) -> None:
        self._client.projects.delete(self.id)

    def set_secret(self, name: str, value: Union[str, bytes], *, allowed_hosts: Optional[List[str]] = None) -> SecretSet:
        """Sets (creates or replaces) a secret. The value is sent in this one request and kept
        nowhere; running sandboxes of the project use the new value at once."""
        text = value.decode("utf-8") if isinstance(value, bytes) else value
        body: Dict[str, Any] = {"value": text}
        if allowed_hosts is not None:
            body["allowedHosts"] = list(allowed_hosts)
        call = Call("PUT", f"/projects/{_core.quote(self.id)}/secrets/{_core.quote(name)}", json=body,
                    idempotent=True, secret=True)
        return SecretSet.from_json(self._client.call(call))

    def list_secrets(self) -> List[SecretInfo]:
        """Every secret's name, hosts and version (never values)."""
        return list(self._client.pages(f"/projects/{_core.quote(self.id)}/secrets", SecretInfo.from_json))

    def delete_secret(self, name: str) -> None:
        self._client.call(Call("DELETE", f"/projects/{_core.quote(self.id)}/secrets/{_core.quote(name)}", idempotent=True))


class Projects:
    def __init__(self, client: OpenSandbox) -> None:
        self._client = client

    def _project(self, data: Dict[str, Any]) -> Project:
        return _bind(Project, self._client, data)

    def create(self, name: str, **fields: Any) -> Project:
        body = _core.project_body(name, **fields)
        return self._project(self._client.call(Call("POST", "/projects", json=body)))

    def get(self, reference: str) -> Project:
        return self._project(self._client.call(Call("GET", f"/projects/{_core.quote(reference)}", idempotent=True)))

    def list(self, *, limit: Optional[int] = None) -> Iterator[Project]:
        return self._client.pages("/projects", self._project, limit)

    def list_page(self, *, limit: Optional[int] = None, cursor: Optional[str] = None) -> Page[Project]:
        return self._client.page("/projects", self._project, limit, cursor)

    def update(self, reference: str, **fields: Any) -> Project:
        body = _core.project_body(fields.pop("name", None), **fields)
        call = Call("PATCH", f"/projects/{_core.quote(reference)}", json=body, idempotent=True)
        return self._project(self._client.call(call))

    def replace(self, reference: str, **fields: Any) -> Project:
        body = _core.project_body(fields.pop("name", None), **fields)
        call = Call("PUT", f"/projects/{_core.quote(reference)}", json=body, idempotent=True)
        return self._project(self._client.call(call))

    def delete(self, reference: str) -> None:
        self._client.call(Call("DELETE", f"/projects/{_core.quote(reference)}", idempotent=True))


class ExecStream:
    """A running command's output as it happens: iterate for ``ExecChunk``s; afterwards
    ``exit_code`` and ``timed_out`` are set. ``wait()`` drains it and returns the ``ExecExit``."""

    def __init__(self, client: OpenSandbox, call: Call) -> None:
        self._client = client
        self._call = call
        self.exit: Optional[ExecExit] = None

    @property
    def exit_code(self) -> Optional[int]:
        return self.exit.exit_code if self.exit else None

    @property
    def timed_out(self) -> Optional[bool]:
        return self.exit.timed_out if self.exit else None

    def __iter__(self) -> Iterator[ExecChunk]:
        with self._client.stream(self._call, "application/x-ndjson") as response:
            for line in response.iter_lines():
                if not line.strip():
                    continue
                item = exec_line(line)
                if isinstance(item, ExecChunk):
                    yield item
                elif isinstance(item, ExecExit):
                    self.exit = item
                elif isinstance(item, dict):
                    raise Unavailable(item.get("error", "the output stream broke off"), status=503,
                                      code=item.get("code", "unavailable"))
        if self.exit is None:
            raise Unavailable("the output stream ended without an exit code", status=503, code="unavailable")

    def wait(self) -> ExecExit:
        for _ in self:
            pass
        assert self.exit is not None
        return self.exit


class Sandbox(SandboxInfo):
    """A sandbox bound to a client."""

    _client: OpenSandbox

    @classmethod
    def create(cls, project: Any = None, *, client: Optional[OpenSandbox] = None, **fields: Any) -> "Sandbox":
        """Creates a sandbox (with an Idempotency-Key, so a retried create is safe)."""
        return _client_of(client).sandboxes.create(project, **fields)

    @classmethod
    def get(cls, sandbox_id: str, *, client: Optional[OpenSandbox] = None) -> "Sandbox":
        return _client_of(client).sandboxes.get(sandbox_id)

    @classmethod
    def list(cls, *, client: Optional[OpenSandbox] = None, limit: Optional[int] = None) -> Iterator["Sandbox"]:
        return _client_of(client).sandboxes.list(limit=limit)

    @classmethod
    def fork(cls, checkpoint: Any, *, client: Optional[OpenSandbox] = None, **fields: Any) -> "Sandbox":
        """A new sandbox from a checkpoint, with fresh sealed tokens."""
        return _client_of(client).sandboxes.fork(checkpoint, **fields)

    def _path(self, tail: str = "") -> str:
        return f"/sandboxes/{_core.quote(self.id)}{tail}"

    def _refresh_from(self, data: Dict[str, Any]) -> "Sandbox":
        for attribute, value in _read(SandboxInfo, data).items():
            setattr(self, attribute, value)
        return self

    def refresh(self) -> "Sandbox":
        return self._refresh_from(self._client.call(Call("GET", self._path(), idempotent=True)))

    def exec(self, cmd: Union[str, List[str]], *, env: Optional[Dict[str, str]] = None, cwd: Optional[str] = None,
             timeout_sec: Optional[int] = None) -> ExecResult:
        """Runs a command to its end (a string runs under ``sh -c``); output is bounded."""
        call = Call("POST", self._path("/exec"), json=_core.exec_body(cmd, env, cwd, timeout_sec),
                    timeout=_core.exec_timeout(timeout_sec))
        return ExecResult.from_json(self._client.call(call))

    def exec_stream(self, cmd: Union[str, List[str]], *, env: Optional[Dict[str, str]] = None,
                    cwd: Optional[str] = None, timeout_sec: Optional[int] = None) -> ExecStream:
        """Runs a command and yields its output as it is written (unbounded)."""
        call = Call("POST", self._path("/exec/stream"), json=_core.exec_body(cmd, env, cwd, timeout_sec),
                    timeout=_core.exec_timeout(timeout_sec))
        return ExecStream(self._client, call)

    def checkpoint(self) -> "Checkpoint":
        call = Call("POST", self._path("/checkpoints"), timeout=LONG_TIMEOUT)
        return _bind(Checkpoint, self._client, self._client.call(call))

    def checkpoints(self, *, limit: Optional[int] = None) -> Iterator["Checkpoint"]:
        """This sandbox's checkpoints, newest first."""
        return self._client.pages(self._path("/checkpoints"), lambda data: _bind(Checkpoint, self._client, data), limit)

    def checkpoints_page(self, *, limit: Optional[int] = None, cursor: Optional[str] = None) -> Page["Checkpoint"]:
        return self._client.page(self._path("/checkpoints"), lambda data: _bind(Checkpoint, self._client, data), limit, cursor)

    def restore(self, checkpoint: Any) -> "Sandbox":
        """Back to a checkpoint of this sandbox, in place: same tokens, current secret values."""
        body = {"checkpointID": getattr(checkpoint, "id", checkpoint)}
        call = Call("POST", self._path("/restore"), json=body, timeout=LONG_TIMEOUT)
        return self._refresh_from(self._client.call(call))

    def delete_checkpoint(self, checkpoint: Any) -> None:
        checkpoint_id = getattr(checkpoint, "id", checkpoint)
        call = Call("DELETE", self._path(f"/checkpoints/{_core.quote(checkpoint_id)}"), timeout=LONG_TIMEOUT, idempotent=True)
        self._client.call(call)

    def snapshot(self, name: str) -> "Snapshot":
        """Registers this sandbox's current state as a golden snapshot named ``name``."""
        return self._client.snapshots.create(name, self)

    def kill(self) -> "Sandbox":
        """Destroys the sandbox (idempotent)."""
        call = Call("DELETE", self._path(), timeout=LONG_TIMEOUT, idempotent=True)
        return self._refresh_from(self._client.call(call))


class Sandboxes:
    def __init__(self, client: OpenSandbox) -> None:
        self._client = client

    def _sandbox(self, data: Dict[str, Any]) -> Sandbox:
        return _bind(Sandbox, self._client, data)

    def create(self, project: Any = None, **fields: Any) -> Sandbox:
        return self._sandbox(self._client.call(Call.create("/sandboxes", _core.sandbox_body(project, **fields))))

    def fork(self, checkpoint: Any, *, project: Any = None, envs: Optional[Dict[str, str]] = None,
             metadata: Optional[Dict[str, str]] = None) -> Sandbox:
        checkpoint_id = getattr(checkpoint, "id", checkpoint)
        body = _core.drop_none({"project": getattr(project, "id", project), "envs": envs, "metadata": metadata})
        call = Call.create(f"/sandboxes/from-checkpoint/{_core.quote(checkpoint_id)}", body)
        return self._sandbox(self._client.call(call))

    def get(self, sandbox_id: str) -> Sandbox:
        return self._sandbox(self._client.call(Call("GET", f"/sandboxes/{_core.quote(sandbox_id)}", idempotent=True)))

    def list(self, *, limit: Optional[int] = None) -> Iterator[Sandbox]:
        """Your sandboxes, newest first, every page."""
        return self._client.pages("/sandboxes", self._sandbox, limit)

    def list_page(self, *, limit: Optional[int] = None, cursor: Optional[str] = None) -> Page[Sandbox]:
        return self._client.page("/sandboxes", self._sandbox, limit, cursor)


class Checkpoint(CheckpointInfo):
    """A checkpoint bound to a client."""

    _client: OpenSandbox

    def fork(self, **fields: Any) -> Sandbox:
        return self._client.sandboxes.fork(self, **fields)

    def delete(self) -> None:
        if self.sandbox_id is None:
            raise ValueError("this checkpoint's sandbox is unknown; delete it through its snapshot")
        self._client.call(Call("DELETE", f"/sandboxes/{_core.quote(self.sandbox_id)}/checkpoints/{_core.quote(self.id)}",
                               timeout=LONG_TIMEOUT, idempotent=True))


class Snapshot(SnapshotInfo):
    """A golden snapshot bound to a client."""

    _client: OpenSandbox

    def delete(self) -> None:
        """Deletes the snapshot and the checkpoint behind it."""
        self._client.snapshots.delete(self.name)


class Snapshots:
    def __init__(self, client: OpenSandbox) -> None:
        self._client = client

    def _snapshot(self, data: Dict[str, Any]) -> Snapshot:
        return _bind(Snapshot, self._client, data)

    def create(self, name: str, sandbox: Any) -> Snapshot:
        body = {"name": name, "sandboxID": getattr(sandbox, "id", sandbox)}
        return self._snapshot(self._client.call(Call("POST", "/snapshots", json=body, timeout=LONG_TIMEOUT)))

    def list(self, *, limit: Optional[int] = None) -> Iterator[Snapshot]:
        return self._client.pages("/snapshots", self._snapshot, limit)

    def list_page(self, *, limit: Optional[int] = None, cursor: Optional[str] = None) -> Page[Snapshot]:
        return self._client.page("/snapshots", self._snapshot, limit, cursor)

    def delete(self, name: str) -> None:
        self._client.call(Call("DELETE", f"/snapshots/{_core.quote(name)}", timeout=LONG_TIMEOUT, idempotent=True))
