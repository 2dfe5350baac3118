"""A server-sent events parser (the WHATWG ``text/event-stream`` rules, like ``oc``'s): lines
in, complete events out. Pure — no I/O — so it is tested line by line. It must not lose an
event split across reads, nor invent one from ``: ping`` comments; it remembers the last
``id:`` the server gave, which a reconnect sends back as ``Last-Event-ID``.
"""

from __future__ import annotations

import json
from typing import Optional

from ._models import Event


class SseParser:
    """Feed lines (without their line ending); complete events come back."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list = []
        self._id: Optional[str] = None
        self.last_event_id: Optional[str] = None
        self.retry_ms: Optional[int] = None

    def line(self, line: str) -> Optional[Event]:
        if line.endswith("\r"):
            line = line[:-1]
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> Optional[Event]:
        if self._id is not None:
            self.last_event_id = self._id
        event_id, self._id = self._id, None
        subject, self._event = self._event or "message", ""
        if not self._data:
            return None
        text, self._data = "\n".join(self._data), []
        try:
            data = json.loads(text)
        except ValueError:
            data = text
        return Event(subject=subject, data=data, id=event_id if event_id is not None else self.last_event_id)
