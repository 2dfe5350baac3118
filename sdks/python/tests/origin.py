"""A local TLS origin playing an API that needs a key: it answers every request with what it
received (``{"host", "path", "receivedKey"}``), so a test sees both what reached the upstream
(recorded in ``received``) and what came back into the sandbox. Binds ``address:443`` (root)
with the certificate ``sdks/test.sh`` made for the test hosts."""

from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import List, Tuple


class Origin:
    def __init__(self, address: str, cert: str, key: str) -> None:
        self.received: List[Tuple[str, str]] = []
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                host = (self.headers.get("host") or "").split(":")[0]
                key = self.headers.get("x-api-key") or ""
                origin.received.append((host, key))
                body = json.dumps({"host": host, "path": self.path, "receivedKey": key}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((address, 443), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def keys_for(self, host: str) -> List[str]:
        return [key for seen_host, key in self.received if seen_host == host]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
