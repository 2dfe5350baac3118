"""The asynchronous client: ``AsyncOpenSandbox`` and ``AsyncProject``, ``AsyncSandbox``,
``AsyncCheckpoint``, ``AsyncSnapshot`` — the same surface as the sync client, awaited; lists,
exec streams and events are async iterators. Shares call descriptions, retry rules and error
mapping with the sync client (``_core``); a secret value goes into one request body only.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable, Dict, List, Optional, Type, TypeVar, Union

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


class AsyncOpenSandbox:
    """An async connection to the API (same configuration rules as ``OpenSandbox``)."""

    _default: Optional["AsyncOpenSandbox"] = None

    def __init__(
        self,
        api_url: Optional[str] = None,
        api_key: Optional[str] = None,
        *,
        max_retries: int = 3,
        transport: Optional[httpx.AsyncBaseTransport] = None,
        env: Optional[Dict[str, str]] = None,
    ) -> None:
        self.connection = resolve(api_url, api_key, env)
        self.retry = RetryPolicy(max_retries=max_retries)
        self._http = httpx.AsyncClient(
            base_url=self.connection.api_url,
            headers=_core.headers(self.connection.api_key),
            transport=transport,
            timeout=_core.QUICK_TIMEOUT,
        )
        self.projects = AsyncProjects(self)
        self.sandboxes = AsyncSandboxes(self)
        self.snapshots = AsyncSnapshots(self)

    @classmethod
    def default(cls) -> "AsyncOpenSandbox":
        if cls._default is None:
            cls._default = cls()
        return cls._default

    @property
    def api_url(self) -> str:
        return self.connection.api_url

    def __repr__(self) -> str:
        return f"AsyncOpenSandbox(api_url={self.api_url!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncOpenSandbox":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def send(self, call: Call) -> httpx.Response:
        retrying = _core.Retrying(call, self.retry, self.api_url)
        while True:
            error: Optional[Exception] = None
            response: Optional[httpx.Response] = None
            try:
                response = await self._http.request(
                    call.method, "/api" + call.path, json=call.json, params=call.params,
                    headers=call.headers, timeout=call.timeout,
                )
            except httpx.TransportError as caught:
                error = caught
            delay = retrying.again(error, response)
            if delay is None:
                return retrying.finish(error, response)
            await asyncio.sleep(delay)

    async def call(self, call: Call) -> Any:
        response = await self.send(call)
        return response.json() if response.content else None

    @asynccontextmanager
    async def stream(self, call: Call, accept: str) -> AsyncIterator[httpx.Response]:
        try:
            async with self._http.stream(
                call.method, "/api" + call.path, json=call.json, params=call.params,
                headers={**call.headers, "Accept": accept}, timeout=httpx.Timeout(call.timeout, read=None),
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    _core.raise_for(response)
                yield response
        except httpx.TransportError as error:
            raise _core.transport_error(call, self.api_url, error) from error

    async def pages(self, path: str, parse: Callable[[Dict[str, Any]], M], limit: Optional[int] = None) -> AsyncIterator[M]:
        cursor: Optional[str] = None
        while True:
            page = await self.page(path, parse, limit, cursor)
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def page(self, path: str, parse: Callable[[Dict[str, Any]], M], limit: Optional[int], cursor: Optional[str]) -> Page[M]:
        response = await self.send(Call("GET", path, params=_core.page_params(limit, cursor), idempotent=True))
        return Page([parse(item) for item in response.json()], response.headers.get("x-next-cursor"))

    async def events(
        self,
        subject: Optional[str] = None,
        *,
        last_event_id: Optional[str] = None,
        reconnect: bool = True,
        read_timeout: float = 60.0,
        on_open: Optional[Callable[[], None]] = None,
    ) -> AsyncIterator[Event]:
        """Your org's events; reconnects like ``OpenSandbox.events`` (with ``Last-Event-ID``)."""
        state = _core.EventStreamState(self.retry, subject, last_event_id)
        while True:
            try:
                async with self._http.stream("GET", "/api/events", params=state.params, headers=state.headers(),
                                       timeout=httpx.Timeout(_core.QUICK_TIMEOUT, read=read_timeout)) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        if state.refused(response, reconnect):
                            _core.raise_for(response)
                    else:
                        state.opened()
                        if on_open is not None:
                            on_open()
                        async for line in response.aiter_lines():
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
            await asyncio.sleep(state.next_delay())


def _bind(cls: Type[M], client: AsyncOpenSandbox, data: Dict[str, Any]) -> M:
    obj = cls(**_read(cls, data))
    obj._client = client  # type: ignore[attr-defined]
    return obj


def _client_of(client: Optional[AsyncOpenSandbox]) -> AsyncOpenSandbox:
    return client if client is not None else AsyncOpenSandbox.default()


class AsyncProject(ProjectInfo):
    _client: AsyncOpenSandbox

    @classmethod
    async def create(cls, name: str, *, client: Optional[AsyncOpenSandbox] = None, **fields: Any) -> "AsyncProject":
        return await _client_of(client).projects.create(name, **fields)

    @classmethod
    async def get(cls, reference: str, *, client: Optional[AsyncOpenSandbox] = None) -> "AsyncProject":
        return await _client_of(client).projects.get(reference)

    @classmethod
    def list(cls, *, client: Optional[AsyncOpenSandbox] = None, limit: Optional[int] = None) -> AsyncIterator["AsyncProject"]:
        return _client_of(client).projects.list(limit=limit)

    def _refresh_from(self, other: "AsyncProject") -> "AsyncProject":
        for attribute in self.WIRE:
            setattr(self, attribute, getattr(other, attribute))
        return self

    async def update(self, **fields: Any) -> "AsyncProject":
        return self._refresh_from(await self._client.projects.update(self.id, **fields))

    async def replace(self, **fields: Any) -> "AsyncProject":
        return self._refresh_from(await self._client.projects.replace(self.id, **fields))

    async def refresh(self) -> "AsyncProject":
        return self._refresh_from(await self._client.projects.get(self.id))

    async def delete(self) -> None:
        await self._client.projects.delete(self.id)

    async def set_secret(self, name: str, value: Union[str, bytes], *, allowed_hosts: Optional[List[str]] = None) -> SecretSet:
        text = value.decode("utf-8") if isinstance(value, bytes) else value
        body: Dict[str, Any] = {"value": text}
        if allowed_hosts is not None:
            body["allowedHosts"] = list(allowed_hosts)
        call = Call("PUT", f"/projects/{_core.quote(self.id)}/secrets/{_core.quote(name)}", json=body,
                    idempotent=True, secret=True)
        return SecretSet.from_json(await self._client.call(call))

    async def list_secrets(self) -> List[SecretInfo]:
        return [item async for item in self._client.pages(f"/projects/{_core.quote(self.id)}/secrets", SecretInfo.from_json)]

    async def delete_secret(self, name: str) -> None:
        await self._client.call(Call("DELETE", f"/projects/{_core.quote(self.id)}/secrets/{_core.quote(name)}", idempotent=True))


class AsyncProjects:
    def __init__(self, client: AsyncOpenSandbox) -> None:
        self._client = client

    def _project(self, data: Dict[str, Any]) -> AsyncProject:
        return _bind(AsyncProject, self._client, data)

    async def create(self, name: str, **fields: Any) -> AsyncProject:
        return self._project(await self._client.call(Call("POST", "/projects", json=_core.project_body(name, **fields))))

    async def get(self, reference: str) -> AsyncProject:
        return self._project(await self._client.call(Call("GET", f"/projects/{_core.quote(reference)}", idempotent=True)))

    def list(self, *, limit: Optional[int] = None) -> AsyncIterator[AsyncProject]:
        return self._client.pages("/projects", self._project, limit)

    async def list_page(self, *, limit: Optional[int] = None, cursor: Optional[str] = None) -> Page[AsyncProject]:
        return await self._client.page("/projects", self._project, limit, cursor)

    async def update(self, reference: str, **fields: Any) -> AsyncProject:
        body = _core.project_body(fields.pop("name", None), **fields)
        return self._project(await self._client.call(Call("PATCH", f"/projects/{_core.quote(reference)}", json=body, idempotent=True)))

    async def replace(self, reference: str, **fields: Any) -> AsyncProject:
        body = _core.project_body(fields.pop("name", None), **fields)
        return self._project(await self._client.call(Call("PUT", f"/projects/{_core.quote(reference)}", json=body, idempotent=True)))

    async def delete(self, reference: str) -> None:
        await self._client.call(Call("DELETE", f"/projects/{_core.quote(reference)}", idempotent=True))


class AsyncExecStream:
    """``async for chunk in stream``; afterwards ``exit_code`` and ``timed_out`` are set."""

    def __init__(self, client: AsyncOpenSandbox, call: Call) -> None:
        self._client = client
        self._call = call
        self.exit: Optional[ExecExit] = None

    @property
    def exit_code(self) -> Optional[int]:
        return self.exit.exit_code if self.exit else None

    @property
    def timed_out(self) -> Optional[bool]:
        return self.exit.timed_out if self.exit else None

    async def __aiter__(self) -> AsyncIterator[ExecChunk]:
        async with self._client.stream(self._call, "application/x-ndjson") as response:
            async for line in response.aiter_lines():
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

    async def wait(self) -> ExecExit:
        async for _ in self:
            pass
        assert self.exit is not None
        return self.exit


class AsyncSandbox(SandboxInfo):
    _client: AsyncOpenSandbox

    @classmethod
    async def create(cls, project: Any = None, *, client: Optional[AsyncOpenSandbox] = None, **fields: Any) -> "AsyncSandbox":
        return await _client_of(client).sandboxes.create(project, **fields)

    @classmethod
    async def get(cls, sandbox_id: str, *, client: Optional[AsyncOpenSandbox] = None) -> "AsyncSandbox":
        return await _client_of(client).sandboxes.get(sandbox_id)

    @classmethod
    def list(cls, *, client: Optional[AsyncOpenSandbox] = None, limit: Optional[int] = None) -> AsyncIterator["AsyncSandbox"]:
        return _client_of(client).sandboxes.list(limit=limit)

    @classmethod
    async def fork(cls, checkpoint: Any, *, client: Optional[AsyncOpenSandbox] = None, **fields: Any) -> "AsyncSandbox":
        return await _client_of(client).sandboxes.fork(checkpoint, **fields)

    def _path(self, tail: str = "") -> str:
        return f"/sandboxes/{_core.quote(self.id)}{tail}"

    def _refresh_from(self, data: Dict[str, Any]) -> "AsyncSandbox":
        for attribute, value in _read(SandboxInfo, data).items():
            setattr(self, attribute, value)
        return self

    async def refresh(self) -> "AsyncSandbox":
        return self._refresh_from(await self._client.call(Call("GET", self._path(), idempotent=True)))

    async def exec(self, cmd: Union[str, List[str]], *, env: Optional[Dict[str, str]] = None, cwd: Optional[str] = None,
                   timeout_sec: Optional[int] = None) -> ExecResult:
        call = Call("POST", self._path("/exec"), json=_core.exec_body(cmd, env, cwd, timeout_sec),
                    timeout=_core.exec_timeout(timeout_sec))
        return ExecResult.from_json(await self._client.call(call))

    def exec_stream(self, cmd: Union[str, List[str]], *, env: Optional[Dict[str, str]] = None,
                    cwd: Optional[str] = None, timeout_sec: Optional[int] = None) -> AsyncExecStream:
        call = Call("POST", self._path("/exec/stream"), json=_core.exec_body(cmd, env, cwd, timeout_sec),
                    timeout=_core.exec_timeout(timeout_sec))
        return AsyncExecStream(self._client, call)

    async def checkpoint(self) -> "AsyncCheckpoint":
        return _bind(AsyncCheckpoint, self._client, await self._client.call(Call("POST", self._path("/checkpoints"), timeout=LONG_TIMEOUT)))

    def checkpoints(self, *, limit: Optional[int] = None) -> AsyncIterator["AsyncCheckpoint"]:
        return self._client.pages(self._path("/checkpoints"), lambda data: _bind(AsyncCheckpoint, self._client, data), limit)

    async def restore(self, checkpoint: Any) -> "AsyncSandbox":
        body = {"checkpointID": getattr(checkpoint, "id", checkpoint)}
        return self._refresh_from(await self._client.call(Call("POST", self._path("/restore"), json=body, timeout=LONG_TIMEOUT)))

    async def delete_checkpoint(self, checkpoint: Any) -> None:
        checkpoint_id = getattr(checkpoint, "id", checkpoint)
        await self._client.call(Call("DELETE", self._path(f"/checkpoints/{_core.quote(checkpoint_id)}"), timeout=LONG_TIMEOUT, idempotent=True))

    async def snapshot(self, name: str) -> "AsyncSnapshot":
        return await self._client.snapshots.create(name, self)

    async def kill(self) -> "AsyncSandbox":
        return self._refresh_from(await self._client.call(Call("DELETE", self._path(), timeout=LONG_TIMEOUT, idempotent=True)))


class AsyncSandboxes:
    def __init__(self, client: AsyncOpenSandbox) -> None:
        self._client = client

    def _sandbox(self, data: Dict[str, Any]) -> AsyncSandbox:
        return _bind(AsyncSandbox, self._client, data)

    async def create(self, project: Any = None, **fields: Any) -> AsyncSandbox:
        return self._sandbox(await self._client.call(Call.create("/sandboxes", _core.sandbox_body(project, **fields))))

    async def fork(self, checkpoint: Any, *, project: Any = None, envs: Optional[Dict[str, str]] = None,
                   metadata: Optional[Dict[str, str]] = None) -> AsyncSandbox:
        checkpoint_id = getattr(checkpoint, "id", checkpoint)
        body = _core.drop_none({"project": getattr(project, "id", project), "envs": envs, "metadata": metadata})
        return self._sandbox(await self._client.call(Call.create(f"/sandboxes/from-checkpoint/{_core.quote(checkpoint_id)}", body)))

    async def get(self, sandbox_id: str) -> AsyncSandbox:
        return self._sandbox(await self._client.call(Call("GET", f"/sandboxes/{_core.quote(sandbox_id)}", idempotent=True)))

    def list(self, *, limit: Optional[int] = None) -> AsyncIterator[AsyncSandbox]:
        return self._client.pages("/sandboxes", self._sandbox, limit)

    async def list_page(self, *, limit: Optional[int] = None, cursor: Optional[str] = None) -> Page[AsyncSandbox]:
        return await self._client.page("/sandboxes", self._sandbox, limit, cursor)


class AsyncCheckpoint(CheckpointInfo):
    _client: AsyncOpenSandbox

    async def fork(self, **fields: Any) -> AsyncSandbox:
        return await self._client.sandboxes.fork(self, **fields)

    async def delete(self) -> None:
        if self.sandbox_id is None:
            raise ValueError("this checkpoint's sandbox is unknown; delete it through its snapshot")
        await self._client.call(Call("DELETE", f"/sandboxes/{_core.quote(self.sandbox_id)}/checkpoints/{_core.quote(self.id)}",
                                     timeout=LONG_TIMEOUT, idempotent=True))


class AsyncSnapshot(SnapshotInfo):
    _client: AsyncOpenSandbox

    async def delete(self) -> None:
        await self._client.snapshots.delete(self.name)


class AsyncSnapshots:
    def __init__(self, client: AsyncOpenSandbox) -> None:
        self._client = client

    def _snapshot(self, data: Dict[str, Any]) -> AsyncSnapshot:
        return _bind(AsyncSnapshot, self._client, data)

    async def create(self, name: str, sandbox: Any) -> AsyncSnapshot:
        body = {"name": name, "sandboxID": getattr(sandbox, "id", sandbox)}
        return self._snapshot(await self._client.call(Call("POST", "/snapshots", json=body, timeout=LONG_TIMEOUT)))

    def list(self, *, limit: Optional[int] = None) -> AsyncIterator[AsyncSnapshot]:
        return self._client.pages("/snapshots", self._snapshot, limit)

    async def list_page(self, *, limit: Optional[int] = None, cursor: Optional[str] = None) -> Page[AsyncSnapshot]:
        return await self._client.page("/snapshots", self._snapshot, limit, cursor)

    async def delete(self, name: str) -> None:
        await self._client.call(Call("DELETE", f"/snapshots/{_core.quote(name)}", timeout=LONG_TIMEOUT, idempotent=True))
