"""The SDK without a platform: configuration precedence (argument > env > the ``oc`` file), the
SSE parser, typed errors, retries with backoff that reuse one Idempotency-Key, a secret value
kept out of every ``repr``/``str``/exception/log line, and event-stream reconnects that send
``Last-Event-ID`` only when the server gave ids."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat

import pytest

import opensandbox
from opensandbox import OpenSandbox, AsyncOpenSandbox, resolve
from opensandbox._sse import SseParser
from fake_server import FakeServer

JSON = {"content-type": "application/json"}


def test_config_follows_argument_then_env_then_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('# written by osbd up\napi_url = "http://file:1"\napi_key = "osk_file"\n')
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    env = {"OPENSANDBOX_CONFIG": str(path)}
    assert (resolve(env=env).api_url, resolve(env=env).api_key) == ("http://file:1", "osk_file")
    env.update(OPENSANDBOX_API_URL="http://env:2", OPENSANDBOX_API_KEY="osk_env")
    assert (resolve(env=env).api_url, resolve(env=env).api_key) == ("http://env:2", "osk_env")
    explicit = resolve("http://arg:3/", "osk_arg", env=env)
    assert (explicit.api_url, explicit.api_key) == ("http://arg:3", "osk_arg")
    assert "osk_arg" not in repr(explicit)
    # The same default path as oc: XDG_CONFIG_HOME when absolute, else HOME.
    xdg = tmp_path / "xdg" / "opensandbox"
    xdg.mkdir(parents=True)
    (xdg / "config.toml").write_text('api_key = "osk_xdg"\n')
    assert resolve(env={"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": "/nowhere"}).api_key == "osk_xdg"
    assert resolve(env={"XDG_CONFIG_HOME": "relative", "HOME": "/nowhere"}).api_key is None
    assert resolve(env={}).api_url == "http://127.0.0.1:8080"


def test_a_broken_config_names_the_file_not_the_key(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('api_key = osk_unquoted_secret\n')
    with pytest.raises(opensandbox.ConfigError) as caught:
        resolve(env={"OPENSANDBOX_CONFIG": str(path)})
    assert str(path) in str(caught.value) and "osk_unquoted_secret" not in str(caught.value)
    path.write_text('api-url = "http://x"\n')
    with pytest.raises(opensandbox.ConfigError, match="unknown key"):
        resolve(env={"OPENSANDBOX_CONFIG": str(path)})


def test_sse_parser_handles_comments_ids_and_multiline_data():
    parser = SseParser()
    events = [parser.line(line) for line in (
        ": ping", "", "id: 7", "event: osb.sandbox.sbx_1.created", 'data: {"a":', "data: 1}", "",
        "event: x", "data: plain", "", "retry: 2500", "event: lonely", "",
    )]
    events = [event for event in events if event]
    assert [(e.subject, e.data, e.id) for e in events] == [
        ("osb.sandbox.sbx_1.created", {"a": 1}, "7"), ("x", "plain", "7"),
    ]
    assert (parser.last_event_id, parser.retry_ms) == ("7", 2500)


def test_refusals_are_typed_with_code_and_status():
    server = FakeServer(lambda request, n: (409, JSON, b'{"error":"project \\"web\\" already exists","code":"conflict"}'))
    try:
        client = OpenSandbox(server.url, "osk_test")
        with pytest.raises(opensandbox.Conflict) as caught:
            client.projects.create("web")
        assert (caught.value.status, caught.value.code) == (409, "conflict")
        assert isinstance(caught.value, opensandbox.APIError)
        assert "already exists" in str(caught.value)
    finally:
        server.close()


def test_retries_back_off_and_reuse_the_idempotency_key():
    sandbox = {"sandboxID": "sbx_" + "0" * 32, "status": "running", "metadata": {}}

    def answer(request, n):
        if n < 3:
            return 503, {**JSON, "retry-after": "0"}, b'{"error":"busy","code":"unavailable"}'
        return 201, JSON, json.dumps(sandbox).encode()

    server = FakeServer(answer)
    try:
        created = OpenSandbox(server.url, "osk_test").sandboxes.create("web")
        assert created.id == sandbox["sandboxID"]
        keys = {request["headers"]["idempotency-key"] for request in server.requests}
        assert len(server.requests) == 3 and len(keys) == 1, "one key for every try"
        # Exec is not idempotent: a 503 is raised at once.
        exec_server = FakeServer(lambda request, n: (503, JSON, b'{"error":"busy","code":"unavailable"}'))
        try:
            box = OpenSandbox(exec_server.url, "osk_test").sandboxes
            bound = box._sandbox(sandbox)
            with pytest.raises(opensandbox.Unavailable):
                bound.exec(["true"])
            assert len(exec_server.requests) == 1
        finally:
            exec_server.close()
    finally:
        server.close()


def test_a_secret_value_appears_in_no_repr_error_or_log(caplog):
    canary = "canary-" + os.urandom(8).hex()
    server = FakeServer(lambda request, n: (
        422, JSON, b'{"error":"secret name PATH is reserved","code":"unprocessable"}'))
    caplog.set_level(logging.DEBUG)
    try:
        client = OpenSandbox(server.url, "osk_test")
        project = client.projects._project({"id": "prj_1", "name": "web", "egressAllowlist": []})
        with pytest.raises(opensandbox.Unprocessable) as caught:
            project.set_secret("PATH", canary)
        assert canary.encode() in server.requests[0]["body"], "sent once, in the body"
        texts = [str(caught.value), repr(caught.value), repr(caught.value.args), repr(project),
                 repr(client), caplog.text]
        assert not [text for text in texts if canary in text]
        # A transport failure of a secret-carrying request keeps no reference to the request.
        dead = OpenSandbox("http://127.0.0.1:9", "osk_test", max_retries=1)
        bound = dead.projects._project({"id": "prj_1", "name": "web"})
        with pytest.raises(opensandbox.APIConnectionError) as failed:
            bound.set_secret("API_KEY", canary)
        assert failed.value.__cause__ is None and failed.value.__context__ is None or canary not in repr(failed.value)
        assert canary not in str(failed.value) and canary not in caplog.text
    finally:
        server.close()


def _stream_server(with_ids: bool):
    def answer(request, n):
        if n > 3:
            return 503, JSON, b'{"error":"gone","code":"unavailable"}'
        line = f"id: {n}\n" if with_ids else ""
        body = f": ping\n\n{line}event: osb.sandbox.sbx_{n}.created\ndata: {{\"n\": {n}}}\n\n"
        return 200, {"content-type": "text/event-stream"}, body.encode()

    return FakeServer(answer)


@pytest.mark.parametrize("with_ids", [True, False])
def test_events_reconnect_with_last_event_id_only_when_given(with_ids):
    server = _stream_server(with_ids)
    try:
        client = OpenSandbox(server.url, "osk_test")
        client.retry.base_delay = 0.01
        seen = []
        for event in client.events():
            seen.append(event.data["n"])
            if len(seen) == 3:
                break
        assert seen == [1, 2, 3], "every stream's event, across reconnects"
        sent = [request["headers"].get("last-event-id") for request in server.requests[:3]]
        assert sent == (([None, "1", "2"]) if with_ids else [None, None, None])
    finally:
        server.close()


def test_async_events_reconnect_too():
    server = _stream_server(True)

    async def run():
        async with AsyncOpenSandbox(server.url, "osk_test") as client:
            client.retry.base_delay = 0.01
            seen = []
            async for event in client.events():
                seen.append(event.id)
                if len(seen) == 2:
                    break
            return seen

    try:
        assert asyncio.run(run()) == ["1", "2"]
        assert server.requests[1]["headers"]["last-event-id"] == "1"
    finally:
        server.close()


def test_an_events_refusal_is_raised_not_retried():
    server = FakeServer(lambda request, n: (400, JSON, b'{"error":"subject must start with osb.sandbox.","code":"invalid_input"}'))
    try:
        with pytest.raises(opensandbox.InvalidInput):
            next(iter(OpenSandbox(server.url, "osk_test").events(subject="osb.cmd.>")))
        assert len(server.requests) == 1
    finally:
        server.close()
