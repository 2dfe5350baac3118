"""Fixtures of the SDK tests. Live tests run against the ``osbd up`` that ``sdks/test.sh``
starts (it exports ``OPENSANDBOX_CONFIG`` — the config file ``osbd up`` wrote, which the SDK
reads like ``oc`` does — and the origin certificate); every exchange the SDK makes goes
through a recording transport and is checked against the served OpenAPI document when the
session ends."""

from __future__ import annotations

import os
from typing import Any, Dict, List

import httpx
import pytest

from openapi_check import decode

EXCHANGES: List[Dict[str, Any]] = []


def _record(request: httpx.Request, response: httpx.Response) -> None:
    content_type = response.headers.get("content-type", "")
    body = request.content if request.method in ("POST", "PUT", "PATCH") else b""
    entry: Dict[str, Any] = {
        "method": request.method,
        "path": request.url.path,
        "status": response.status_code,
        "request": decode(body) if body else None,
        "response": None,
        "headers": [name for name in ("x-next-cursor", "link") if name in response.headers],
    }
    if content_type.startswith("application/json") and request.url.path != "/api/openapi.json":
        response.read()
        entry["response"] = decode(response.content)
    EXCHANGES.append(entry)


class RecordingTransport(httpx.HTTPTransport):
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        _record(request, response)
        return response


class AsyncRecordingTransport(httpx.AsyncHTTPTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if response.headers.get("content-type", "").startswith("application/json"):
            await response.aread()
        _record(request, response)
        return response


def need(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run the live tests through sdks/test.sh", pytrace=False)
    return value


@pytest.fixture(scope="session")
def live_env() -> Dict[str, str]:
    return {
        "OPENSANDBOX_CONFIG": need("OPENSANDBOX_CONFIG"),
        "cert": need("OSB_SDK_ORIGIN_CERT"),
        "key": need("OSB_SDK_ORIGIN_KEY"),
        "data_dir": need("OSB_SDK_DATA_DIR"),
        "origin_ip": need("OSB_SDK_PY_ORIGIN_IP"),
    }


@pytest.fixture(scope="session")
def client(live_env: Dict[str, str]):
    from opensandbox import OpenSandbox

    # Only the config file names the server and the key: the SDK must find them there.
    env = {"OPENSANDBOX_CONFIG": live_env["OPENSANDBOX_CONFIG"]}
    with OpenSandbox(env=env, transport=RecordingTransport()) as opened:
        yield opened


@pytest.fixture(scope="session")
def origin(live_env: Dict[str, str]):
    from origin import Origin

    served = Origin(live_env["origin_ip"], live_env["cert"], live_env["key"])
    yield served
    served.close()


@pytest.fixture(scope="session")
def document(client) -> Dict[str, Any]:
    return httpx.get(client.api_url + "/api/openapi.json").json()
