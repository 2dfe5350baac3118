"""Runs last (files run in name order): every request body the SDK sent and every JSON answer
it parsed during the live tests matches the OpenAPI document the server serves — a field the
server does not document fails. Also: every wire name the models read is documented."""

from conftest import EXCHANGES
from openapi_check import check_exchange, resolve


def test_every_exchange_matches_the_served_document(document):
    assert len(EXCHANGES) > 50, "the live tests ran through the recording transport"
    problems = [problem for exchange in EXCHANGES for problem in check_exchange(document, exchange)]
    assert not problems, "\n".join(problems)
    methods = {(exchange["method"], exchange["status"]) for exchange in EXCHANGES}
    for expected in [("POST", 201), ("PUT", 200), ("PATCH", 200), ("DELETE", 204), ("GET", 404), ("POST", 400)]:
        assert expected in methods, f"no exchange {expected} was checked"


def test_models_read_only_documented_fields(document):
    from opensandbox import (
        CheckpointInfo, ExecResult, ProjectInfo, SandboxInfo, SecretInfo, SecretSet, SnapshotInfo,
    )

    schemas = document["components"]["schemas"]
    for model, schema in [
        (ProjectInfo, "Project"), (SecretInfo, "Secret"), (SecretSet, "SecretSet"),
        (SandboxInfo, "Sandbox"), (CheckpointInfo, "Checkpoint"), (SnapshotInfo, "Snapshot"),
        (ExecResult, "ExecResult"),
    ]:
        properties = resolve(document, schemas[schema])["properties"]
        for attribute, wire in model.WIRE.items():
            assert wire in properties, f"{model.__name__}.{attribute} reads {wire}, which {schema} does not document"
            assert not properties[wire].get("deprecated"), f"{model.__name__} reads the deprecated {wire}"
