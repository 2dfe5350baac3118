"""Where the SDK connects and with which key, exactly as ``oc`` decides it: an explicit argument,
else ``OPENSANDBOX_API_URL`` / ``OPENSANDBOX_API_KEY``, else the ``oc`` config file
(``$OPENSANDBOX_CONFIG``, else ``$XDG_CONFIG_HOME/opensandbox/config.toml`` when absolute, else
``~/.config/opensandbox/config.toml``), else ``http://127.0.0.1:8080`` for the URL. The key is
never printed: errors name the file and line, never a value.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

from ._errors import ConfigError

API_URL_ENV = "OPENSANDBOX_API_URL"
API_KEY_ENV = "OPENSANDBOX_API_KEY"
CONFIG_ENV = "OPENSANDBOX_CONFIG"
DEFAULT_API_URL = "http://127.0.0.1:8080"


@dataclass(frozen=True)
class Connection:
    """The resolved URL and key, and where each came from (for error messages)."""

    api_url: str
    api_key: Optional[str] = field(repr=False)
    url_source: str
    key_source: str


def config_path(env: Mapping[str, str]) -> Optional[Path]:
    """The ``oc`` config file's path for this environment, or None when none can be named."""

    def value(name: str) -> Optional[str]:
        text = env.get(name)
        return text if text else None

    explicit = value(CONFIG_ENV)
    if explicit:
        return Path(explicit)
    xdg = value("XDG_CONFIG_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "opensandbox" / "config.toml"
    home = value("HOME")
    if home:
        return Path(home) / ".config" / "opensandbox" / "config.toml"
    return None


_LINE = re.compile(r'^\s*(api_url|api_key)\s*=\s*("(?:[^"\\]|\\.)*")\s*(#.*)?$')


def _parse(path: Path, text: str) -> dict:
    """Parses the two-key TOML file ``osbd up`` writes (basic strings only, like ``oc``)."""
    try:
        import tomllib  # Python 3.11+

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            # The message names a position, never the text at it.
                raise ConfigError(f"{path}: {error}; the file holds api_url = \"…\" and api_key = \"…\"") from None
    except ImportError:
        data = {}
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip() or line.strip().startswith("#"):
                continue
            match = _LINE.match(line)
            if not match:
                raise ConfigError(f"{path}:{number}: expected api_url = \"…\" or api_key = \"…\"")
            data[match.group(1)] = json.loads(match.group(2))
    unknown = sorted(set(data) - {"api_url", "api_key"})
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r}; the file holds only api_url and api_key")
    for key in ("api_url", "api_key"):
        if key in data and not isinstance(data[key], str):
            raise ConfigError(f"{path}: {key} must be a string")
    return data


def load_config(path: Path) -> dict:
    """The config file's keys, or {} when it does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    return _parse(path, text)


def resolve(
    api_url: Optional[str] = None,
    api_key: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
) -> Connection:
    """Explicit argument > environment > config file (> default URL)."""
    env = os.environ if env is None else env
    path = config_path(env)
    file = load_config(path) if path is not None else {}

    def nonblank(value: Optional[str]) -> Optional[str]:
        return value if value and value.strip() else None

    if nonblank(api_url):
        url, url_source = str(api_url), "argument"
    elif nonblank(env.get(API_URL_ENV)):
        url, url_source = env[API_URL_ENV], API_URL_ENV
    elif nonblank(file.get("api_url")):
        url, url_source = file["api_url"], f"api_url in {path}"
    else:
        url, url_source = DEFAULT_API_URL, "default"
    if nonblank(api_key):
        key, key_source = api_key, "argument"
    elif nonblank(env.get(API_KEY_ENV)):
        key, key_source = env[API_KEY_ENV], API_KEY_ENV
    elif nonblank(file.get("api_key")):
        key, key_source = file["api_key"], f"api_key in {path}"
    else:
        key, key_source = None, "none"
    return Connection(url.rstrip("/"), key, url_source, key_source)
