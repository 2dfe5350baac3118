"""Checks what the SDK sent and parsed against the OpenAPI document the live server serves:
every request body against its operation's request schema, every JSON answer against the
schema of its status — types, enums, required fields, and above all that no field is
undocumented (objects are closed). Patterns and formats are not evaluated."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional


def resolve(document: Dict[str, Any], schema: Dict[str, Any]) -> Dict[str, Any]:
    while "$ref" in schema:
        node: Any = document
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def check(document: Dict[str, Any], schema: Dict[str, Any], value: Any, at: str, problems: List[str]) -> None:
    schema = resolve(document, schema)
    allowed = schema.get("type")
    allowed = [allowed] if isinstance(allowed, str) else (allowed or [])
    actual = _kind(value)
    if allowed and actual not in allowed and not (actual == "integer" and "number" in allowed):
        problems.append(f"{at}: {actual} where the document says {allowed}")
        return
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{at}: {value!r} is not one of {schema['enum']}")
    if "anyOf" in schema and isinstance(value, dict):
        if not any(all(name in value for name in option.get("required", [])) for option in schema["anyOf"]):
            problems.append(f"{at}: none of {schema['anyOf']} holds")
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                problems.append(f"{at}: required field {name} is missing")
        for name, item in value.items():
            properties = schema.get("properties", {})
            if name in properties:
                check(document, properties[name], item, f"{at}.{name}", problems)
            elif isinstance(schema.get("additionalProperties"), dict):
                check(document, schema["additionalProperties"], item, f"{at}.{name}", problems)
            else:
                problems.append(f"{at}.{name}: field not documented")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            check(document, schema["items"], item, f"{at}[{index}]", problems)


def operation(document: Dict[str, Any], method: str, path: str) -> Optional[Dict[str, Any]]:
    """The documented operation of a concrete path (``/api/sandboxes/sbx_…`` → ``{id}``)."""
    segments = path.split("?")[0].split("/")
    best = None
    for template, item in document["paths"].items():
        parts = template.split("/")
        if len(parts) != len(segments) or method.lower() not in item:
            continue
        if all(p == s or p.startswith("{") for p, s in zip(parts, segments)):
            literal = sum(p == s for p, s in zip(parts, segments))
            if best is None or literal > best[0]:
                best = (literal, item[method.lower()])
    return best[1] if best else None


def check_exchange(document: Dict[str, Any], exchange: Dict[str, Any]) -> List[str]:
    """Problems of one recorded request/answer pair."""
    method, path = exchange["method"], exchange["path"]
    what = f"{method} {path}"
    op = operation(document, method, path)
    if op is None:
        return [f"{what}: not a documented operation"]
    problems: List[str] = []
    if exchange.get("request") is not None:
        body = op.get("requestBody")
        if body is None:
            problems.append(f"{what}: sent a body the operation does not document")
        else:
            check(document, body["content"]["application/json"]["schema"], exchange["request"], f"{what} request", problems)
    status = str(exchange["status"])
    response = op["responses"].get(status)
    if response is None:
        return problems + [f"{what}: status {status} is not documented"]
    response = resolve(document, response)
    if exchange.get("response") is not None:
        schema = response.get("content", {}).get("application/json", {}).get("schema")
        if schema is None:
            problems.append(f"{what} {status}: a JSON answer the document does not describe")
        else:
            check(document, schema, exchange["response"], f"{what} {status}", problems)
    for header in exchange.get("headers", []):
        if header not in {name.lower() for name in response.get("headers", {})}:
            problems.append(f"{what} {status}: header {header} not documented")
    return problems


def decode(content: bytes) -> Any:
    return json.loads(content) if content else None
