"""The API's objects as plain dataclasses, read from the documented wire names (``sandboxID``,
``memoryMB``, …). Each class lists its wire names in ``WIRE`` so a test can check every one
against the served OpenAPI document. No model ever holds a secret value.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar, Dict, Generic, List, Optional, TypeVar

T = TypeVar("T")


def parse_time(text: Optional[str]) -> Optional[datetime]:
    """RFC 3339 as the API writes it (``Z``, up to nanoseconds) to an aware datetime."""
    if not text:
        return None
    text = text.replace("Z", "+00:00")
    head, sep, tail = text.partition(".")
    if sep:
        digits = len(tail) - len(tail.lstrip("0123456789"))
        tail = tail[:digits][:6].ljust(6, "0") + tail[digits:]
        text = f"{head}.{tail}"
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _read(cls: Any, data: Dict[str, Any]) -> Dict[str, Any]:
    values = {}
    for attribute, wire in cls.WIRE.items():
        value = data.get(wire)
        if attribute in cls.TIMES:
            value = parse_time(value)
        values[attribute] = value
    return values


@dataclass
class ProjectInfo:
    """A project: secrets, the egress allowlist and sandbox defaults."""

    WIRE: ClassVar[Dict[str, str]] = {
        "id": "id", "org_id": "orgID", "name": "name", "template": "template",
        "cpu_count": "cpuCount", "memory_mb": "memoryMB", "timeout_sec": "timeoutSec",
        "egress_allowlist": "egressAllowlist", "created_at": "createdAt", "updated_at": "updatedAt",
        "runtime": "runtime",
    }
    TIMES: ClassVar[tuple] = ("created_at", "updated_at")
    id: str
    org_id: str
    name: str
    template: Optional[str]
    cpu_count: int
    memory_mb: int
    timeout_sec: int
    egress_allowlist: List[str]
    created_at: Optional[datetime]
    updated_at: Optional[datetime]
    runtime: Optional[str] = None


@dataclass
class SecretInfo:
    """A secret's metadata. There is no value: the API never returns one."""

    WIRE: ClassVar[Dict[str, str]] = {
        "name": "name", "allowed_hosts": "allowedHosts",
        "inherits_project_allowlist": "inheritsProjectAllowlist", "version": "version",
        "created_at": "createdAt", "updated_at": "updatedAt",
    }
    TIMES: ClassVar[tuple] = ("created_at", "updated_at")
    name: str
    allowed_hosts: List[str]
    inherits_project_allowlist: bool
    version: int
    created_at: Optional[datetime]
    updated_at: Optional[datetime]

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "SecretInfo":
        return cls(**_read(cls, data))


@dataclass
class SecretSet:
    """The answer to setting a secret: its name, new version and how many running sandboxes
    now use the new value."""

    WIRE: ClassVar[Dict[str, str]] = {
        "name": "name", "status": "status", "version": "version", "refreshed": "refreshed",
    }
    TIMES: ClassVar[tuple] = ()
    name: str
    status: str
    version: int
    refreshed: int

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "SecretSet":
        return cls(**_read(cls, data))


@dataclass
class SandboxInfo:
    """A sandbox. ``warning`` is set when its egress control is only cooperative."""

    WIRE: ClassVar[Dict[str, str]] = {
        "id": "sandboxID", "status": "status", "worker_id": "workerID", "project": "project",
        "project_id": "projectID", "template": "template", "cpu_count": "cpuCount",
        "memory_mb": "memoryMB", "timeout_sec": "timeoutSec", "runtime": "runtime",
        "egress": "egress", "warning": "warning", "failure_reason": "failureReason",
        "metadata": "metadata", "created_at": "createdAt", "updated_at": "updatedAt",
    }
    TIMES: ClassVar[tuple] = ("created_at", "updated_at")
    id: str
    status: str
    worker_id: Optional[str]
    project: Optional[str]
    project_id: Optional[str]
    template: str
    cpu_count: int
    memory_mb: int
    timeout_sec: int
    runtime: Optional[str]
    egress: Optional[str]
    warning: Optional[str]
    failure_reason: Optional[str]
    metadata: Dict[str, str]
    created_at: Optional[datetime]
    updated_at: Optional[datetime]


@dataclass
class CheckpointInfo:
    """A checkpoint of a sandbox's writable layer (names and token ids only, never values)."""

    WIRE: ClassVar[Dict[str, str]] = {
        "id": "checkpointID", "sandbox_id": "sandboxID", "worker_id": "workerID",
        "created_at": "createdAt",
    }
    TIMES: ClassVar[tuple] = ("created_at",)
    id: str
    sandbox_id: Optional[str]
    worker_id: str
    created_at: Optional[datetime]


@dataclass
class SnapshotInfo:
    """A golden snapshot: a named checkpoint new sandboxes boot from."""

    WIRE: ClassVar[Dict[str, str]] = {
        "name": "name", "checkpoint_id": "checkpointID", "sandbox_id": "sandboxID",
        "worker_id": "workerID", "created_at": "createdAt",
    }
    TIMES: ClassVar[tuple] = ("created_at",)
    name: str
    checkpoint_id: Optional[str]
    sandbox_id: Optional[str]
    worker_id: Optional[str]
    created_at: Optional[datetime]


@dataclass
class ExecResult:
    """What a command did. Output is bounded per stream (``*_truncated`` say when it was cut)."""

    WIRE: ClassVar[Dict[str, str]] = {
        "exit_code": "exitCode", "stdout": "stdout", "stderr": "stderr",
        "stdout_truncated": "stdoutTruncated", "stderr_truncated": "stderrTruncated",
        "timed_out": "timedOut",
    }
    TIMES: ClassVar[tuple] = ()
    exit_code: int
    stdout: str
    stderr: str
    stdout_truncated: bool
    stderr_truncated: bool
    timed_out: bool

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "ExecResult":
        return cls(**_read(cls, data))


@dataclass
class ExecChunk:
    """Bytes a streaming command wrote: ``stream`` is ``"stdout"`` or ``"stderr"``."""

    stream: str
    data: bytes


@dataclass
class ExecExit:
    """How a streamed command ended."""

    exit_code: int
    timed_out: bool


def exec_line(line: str) -> Any:
    """One NDJSON line of ``exec/stream``: an ``ExecChunk``, an ``ExecExit``, or the error dict
    the server sends when the worker went away mid-stream (``{"error", "code"}``)."""
    data = json.loads(line)
    if "stdout" in data:
        return ExecChunk("stdout", base64.b64decode(data["stdout"]))
    if "stderr" in data:
        return ExecChunk("stderr", base64.b64decode(data["stderr"]))
    if "exitCode" in data:
        return ExecExit(int(data["exitCode"]), bool(data.get("timedOut", False)))
    if "error" in data:
        return data
    return None


@dataclass
class Event:
    """One server-sent event: ``subject`` (e.g. ``osb.sandbox.<id>.created``), its JSON
    envelope in ``data`` (names, ids, hosts, versions — never a value), and the server's
    event id when it gives one."""

    subject: str
    data: Any
    id: Optional[str] = None


@dataclass
class Page(Generic[T]):
    """One page of a list: ``items`` and, when more follow, ``next_cursor``."""

    items: List[T] = field(default_factory=list)
    next_cursor: Optional[str] = None

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None
