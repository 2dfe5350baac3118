"""The SDK against a real ``osbd up`` (netns sandboxes, the sealing proxy) started by
``sdks/test.sh``: the 8-step flow — project with an allowlist, two secrets (one restricted to
one host), list (names, no values), a sandbox, only sealed tokens inside, a request from inside
reaching a local TLS origin with the real value while the echo comes back scrubbed, an update
used by the next request, then delete — plus typed errors, pagination, streaming exec,
checkpoints, fork, snapshots and their deletion, events, and the async client."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid

import pytest

import opensandbox
from opensandbox import AsyncOpenSandbox, OpenSandbox, Project, Sandbox

LLM = "py-llm.sdk.test"
OTHER = "py-other.sdk.test"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def curl(sandbox, host: str, variable: str) -> str:
    script = f'curl -sS -m 20 -H "x-api-key: ${variable}" https://{host}/echo; echo " status=$?"'
    return sandbox.exec(["sh", "-c", script], timeout_sec=60).stdout


def test_the_eight_step_flow(client, origin):
    value, rotated, other_value = (f"sk-{kind}-{uuid.uuid4().hex}" for kind in ("live", "rotated", "other"))
    # 1. A project with an allowlist.
    project = Project.create(unique("flow"), egress_allowlist=[LLM, OTHER], client=client)
    assert project.egress_allowlist == [LLM, OTHER]
    # 2. Two secrets, one host-restricted.
    assert project.set_secret("LLM_KEY", value, allowed_hosts=[LLM]).version == 1
    assert project.set_secret("OTHER_KEY", other_value).status == "set"
    # 3. Listed by name, never with a value.
    listed = project.list_secrets()
    assert [(s.name, s.allowed_hosts, s.inherits_project_allowlist) for s in listed] == [
        ("LLM_KEY", [LLM], False), ("OTHER_KEY", [], True)]
    assert value not in repr(listed) and value not in repr(project)
    # 4. A sandbox of the project.
    sandbox = Sandbox.create(project=project, metadata={"suite": "python"}, client=client)
    try:
        assert (sandbox.status, sandbox.metadata, sandbox.project_id) == ("running", {"suite": "python"}, project.id)
        assert sandbox.warning is None, "netns sandboxes enforce egress"
        # 5. Only sealed tokens inside.
        env = sandbox.exec("env").stdout
        tokens = dict(line.split("=", 1) for line in env.splitlines() if line.startswith(("LLM_KEY=", "OTHER_KEY=")))
        assert all(token.startswith("osb_sealed_") and len(token) == 43 for token in tokens.values()), env
        assert value not in env and other_value not in env
        # 6. The origin gets the real value; the echo comes back as the token.
        echoed = curl(sandbox, LLM, "LLM_KEY")
        assert origin.keys_for(LLM)[-1] == value
        assert tokens["LLM_KEY"] in echoed and value not in echoed, echoed
        # The restricted secret is refused toward the other host; the other secret goes there.
        refused = curl(sandbox, OTHER, "LLM_KEY")
        assert "LLM_KEY" in refused and value not in refused, refused
        assert value not in origin.keys_for(OTHER)
        curl(sandbox, OTHER, "OTHER_KEY")
        assert origin.keys_for(OTHER)[-1] == other_value
        # 7. An update reaches the running sandbox: the next request uses the new value.
        updated = project.set_secret("LLM_KEY", rotated, allowed_hosts=[LLM])
        assert (updated.version, updated.refreshed) == (2, 1)
        echoed = curl(sandbox, LLM, "LLM_KEY")
        assert origin.keys_for(LLM)[-1] == rotated and rotated not in echoed and tokens["LLM_KEY"] in echoed
        # 8. Delete the secret, then the project.
        project.delete_secret("LLM_KEY")
        assert [s.name for s in project.list_secrets()] == ["OTHER_KEY"]
    finally:
        sandbox.kill()
    assert sandbox.status == "destroyed"
    project.delete()
    with pytest.raises(opensandbox.NotFound):
        client.projects.get(project.name)


def test_errors_are_typed_with_their_codes(client):
    config = {"OPENSANDBOX_CONFIG": os.environ["OPENSANDBOX_CONFIG"]}
    url = client.api_url
    with pytest.raises(opensandbox.Unauthorized) as missing:
        OpenSandbox(url, env={}).projects.list_page()
    with pytest.raises(opensandbox.Forbidden) as wrong:
        OpenSandbox(url, "osk_" + "0" * 40, env=config).projects.list_page()
    with pytest.raises(opensandbox.NotFound) as absent:
        client.sandboxes.get("sbx_" + "0" * 32)
    name = unique("dup")
    project = client.projects.create(name)
    with pytest.raises(opensandbox.Conflict) as duplicate:
        client.projects.create(name)
    with pytest.raises(opensandbox.InvalidInput) as invalid:
        client.projects.create("Not A Name")
    with pytest.raises(opensandbox.Unprocessable) as reserved:
        project.set_secret("PATH", "x")
    with pytest.raises(opensandbox.InvalidInput) as limit:
        client.projects.list_page(limit=0)
    project.delete()
    codes = [(e.value.status, e.value.code) for e in (missing, wrong, absent, duplicate, invalid, reserved, limit)]
    assert codes == [(401, "missing_api_key"), (403, "invalid_api_key"), (404, "not_found"), (409, "conflict"),
                     (400, "invalid_input"), (422, "unprocessable"), (400, "invalid_input")]
    assert "limit" in str(limit.value)


def test_update_merges_and_replace_resets(client):
    project = client.projects.create(unique("edit"), cpu_count=2, egress_allowlist=[LLM])
    try:
        project.update(memory_mb=1024)
        assert (project.cpu_count, project.memory_mb, project.egress_allowlist) == (2, 1024, [LLM])
        project.replace(timeout_sec=600)
        assert (project.cpu_count, project.memory_mb, project.timeout_sec, project.egress_allowlist) == (1, 512, 600, [])
        assert project.refresh().timeout_sec == 600
    finally:
        project.delete()


def test_lists_follow_the_cursor(client):
    prefix = unique("page")
    created = [client.projects.create(f"{prefix}-{index}").name for index in range(7)]
    try:
        first = client.projects.list_page(limit=3)
        assert len(first.items) == 3 and first.has_more
        walked, cursor = [], None
        while True:
            page = client.projects.list_page(limit=3, cursor=cursor)
            walked += [p.name for p in page.items]
            if not page.has_more:
                break
            cursor = page.next_cursor
        ours = [name for name in walked if name.startswith(prefix)]
        assert ours == sorted(created)
        assert [p.name for p in client.projects.list(limit=2) if p.name.startswith(prefix)] == sorted(created)
        assert len(walked) == len(set(walked)), "no item twice"
    finally:
        for name in created:
            client.projects.delete(name)


def test_exec_streams_checkpoints_forks_and_snapshots(client, live_env):
    project = client.projects.create(unique("ops"))
    sandbox = client.sandboxes.create(project, envs={"GREETING": "hi"})
    fork = None
    try:
        stream = sandbox.exec_stream(["sh", "-c", "echo one; echo two >&2; sleep 0.2; echo three; exit 3"])
        chunks = list(stream)
        out = b"".join(c.data for c in chunks if c.stream == "stdout")
        err = b"".join(c.data for c in chunks if c.stream == "stderr")
        assert (out, err, stream.exit_code, stream.timed_out) == (b"one\nthree\n", b"two\n", 3, False)
        buffered = sandbox.exec("echo $GREETING; exit 2")
        assert (buffered.stdout, buffered.exit_code) == ("hi\n", 2)
        sandbox.exec("echo before > /tmp/mark")
        checkpoint = sandbox.checkpoint()
        layer = os.path.join(live_env["data_dir"], "worker", "sandboxes", "checkpoints", checkpoint.id)
        assert os.path.isdir(layer)
        sandbox.exec("echo after > /tmp/mark")
        sandbox.restore(checkpoint)
        assert sandbox.exec("cat /tmp/mark").stdout == "before\n"
        fork = checkpoint.fork(metadata={"role": "fork"})
        assert fork.id != sandbox.id and fork.metadata == {"role": "fork"}
        assert fork.exec("cat /tmp/mark").stdout == "before\n"
        assert [c.id for c in sandbox.checkpoints()] == [checkpoint.id]
        snapshot = sandbox.snapshot(unique("golden"))
        assert snapshot.checkpoint_id and snapshot.sandbox_id == sandbox.id
        assert snapshot.name in [s.name for s in client.snapshots.list()]
        with pytest.raises(opensandbox.Conflict):
            sandbox.delete_checkpoint(snapshot.checkpoint_id)
        booted = client.sandboxes.create(project, snapshot=snapshot.name)
        assert booted.exec("cat /tmp/mark").stdout == "before\n"
        booted.kill()
        # Storage goes: the checkpoint's layer on the worker, then the snapshot with its own.
        checkpoint.delete()
        assert not os.path.exists(layer)
        snapshot_layer = os.path.join(live_env["data_dir"], "worker", "sandboxes", "checkpoints", snapshot.checkpoint_id)
        snapshot.delete()
        assert not os.path.exists(snapshot_layer)
        assert list(sandbox.checkpoints()) == []
        with pytest.raises(opensandbox.NotFound):
            client.snapshots.delete(snapshot.name)
    finally:
        if fork is not None:
            fork.kill()
        sandbox.kill()
        project.delete()


def test_events_stream_the_orgs_sandbox_events(client):
    opened = threading.Event()
    seen = []

    def follow():
        for event in client.events(subject="osb.sandbox.*.created", on_open=opened.set):
            seen.append(event)
            return

    listener = threading.Thread(target=follow, daemon=True)
    listener.start()
    assert opened.wait(30), "the event stream opened"
    sandbox = client.sandboxes.create(None)
    try:
        listener.join(60)
        assert seen and seen[0].subject == f"osb.sandbox.{sandbox.id}.created", seen
        assert isinstance(seen[0].data, dict)
    finally:
        sandbox.kill()


def test_the_async_client_does_the_same(live_env, origin):
    config = {"OPENSANDBOX_CONFIG": live_env["OPENSANDBOX_CONFIG"]}
    value = f"sk-async-{uuid.uuid4().hex}"

    async def run():
        from conftest import AsyncRecordingTransport

        async with AsyncOpenSandbox(env=config, transport=AsyncRecordingTransport()) as client:
            project = await client.projects.create(unique("async"), egress_allowlist=[LLM])
            await project.set_secret("LLM_KEY", value)
            assert [s.name for s in await project.list_secrets()] == ["LLM_KEY"]
            sandbox = await client.sandboxes.create(project)
            try:
                stream = sandbox.exec_stream(["sh", "-c", f'curl -sS -m 20 -H "x-api-key: $LLM_KEY" https://{LLM}/echo'])
                output = b"".join([chunk.data async for chunk in stream])
                assert stream.exit_code == 0 and value.encode() not in output and b"osb_sealed_" in output
                assert origin.keys_for(LLM)[-1] == value
                names = [p.name async for p in client.projects.list(limit=1)]
                assert project.name in names
            finally:
                await sandbox.kill()
                await project.delete()

    asyncio.run(run())
