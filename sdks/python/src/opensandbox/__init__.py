"""OpenSandbox: run untrusted code in sandboxes that use API keys without seeing them.

    from opensandbox import Project, Sandbox

    project = Project.create("demo", egress_allowlist=["api.anthropic.com"])
    project.set_secret("ANTHROPIC_API_KEY", key, allowed_hosts=["api.anthropic.com"])
    sandbox = Sandbox.create(project=project)
    print(sandbox.exec("echo $ANTHROPIC_API_KEY").stdout)   # osb_sealed_… — never the key

``OpenSandbox`` / ``AsyncOpenSandbox`` are the clients; configuration comes from arguments,
``OPENSANDBOX_API_URL`` / ``OPENSANDBOX_API_KEY``, or the ``oc`` config file, in that order.
"""

from ._async import (
    AsyncCheckpoint, AsyncExecStream, AsyncOpenSandbox, AsyncProject, AsyncSandbox, AsyncSnapshot,
)
from ._client import Checkpoint, ExecStream, OpenSandbox, Project, Sandbox, Snapshot
from ._config import Connection, resolve
from ._core import VERSION as __version__
from ._errors import (
    APIConnectionError, APIError, APITimeoutError, ConfigError, Conflict, Forbidden, InternalError,
    InvalidInput, NotFound, OpenSandboxError, PayloadTooLarge, Unauthorized, Unavailable,
    Unprocessable,
)
from ._models import (
    CheckpointInfo, Event, ExecChunk, ExecExit, ExecResult, Page, ProjectInfo, SandboxInfo,
    SecretInfo, SecretSet, SnapshotInfo,
)

__all__ = [
    "OpenSandbox", "AsyncOpenSandbox", "Project", "Sandbox", "Checkpoint", "Snapshot",
    "AsyncProject", "AsyncSandbox", "AsyncCheckpoint", "AsyncSnapshot", "ExecStream",
    "AsyncExecStream", "Connection", "resolve", "OpenSandboxError", "APIError",
    "APIConnectionError", "APITimeoutError", "ConfigError", "InvalidInput", "Unauthorized",
    "Forbidden", "NotFound", "Conflict", "PayloadTooLarge", "Unprocessable", "InternalError",
    "Unavailable", "Event", "ExecChunk", "ExecExit", "ExecResult", "Page", "ProjectInfo",
    "SandboxInfo", "SecretInfo", "SecretSet", "SnapshotInfo", "CheckpointInfo", "__version__",
]
