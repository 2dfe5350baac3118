//! The OpenAPI document is kept true: every route registered in the gateway's source is
//! documented and every documented route is served (both directions, by reading the route
//! registrations and by requesting each path with each method), the document hangs together
//! (every `$ref` resolves, every path parameter is declared, key-protected operations declare
//! 401 and 403), and real answers use only documented fields, with documented types.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::fixtures::{self, send};
use super::Gateway;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// The served document.
pub async fn fetch_document(gateway: &Gateway) -> Value {
    let (status, document) = send(gateway, "GET", "/api/openapi.json", None, &[]).await;
    assert_eq!(status, 200, "{document}");
    document
}

/// `(METHOD, path)` of every documented operation.
fn documented(document: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            out.insert((method.to_uppercase(), path.clone()));
        }
    }
    out
}

/// Reads `.route("<path>", web::<method>()` registrations from a source text.
fn scan_routes(source: &str, file: &str) -> Vec<(String, String)> {
    let mut routes = Vec::new();
    for piece in source.split(".route(").skip(1) {
        let piece = piece.trim_start();
        let path = piece
            .strip_prefix('"')
            .and_then(|rest| rest.split_once('"'))
            .map(|(path, _)| path.to_owned())
            .unwrap_or_else(|| panic!("{file}: a .route( whose path is not a literal"));
        let after = piece[path.len() + 2..]
            .trim_start()
            .trim_start_matches(',')
            .trim_start();
        let method = after
            .strip_prefix("web::")
            .and_then(|rest| rest.split_once("()"))
            .map(|(method, _)| method.to_uppercase())
            .unwrap_or_else(|| panic!("{file}: route {path} has no web::<method>()"));
        routes.push((method, path));
    }
    routes
}

/// Every route the gateway's source registers, with its full path.
fn registered_routes() -> BTreeSet<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/gateway");
    let root = std::fs::read_to_string(dir.join("mod.rs")).expect("gateway/mod.rs");
    // One scope, `/api`; resources register plain routes only (anything else would escape
    // this scan, so it fails instead).
    assert_eq!(
        root.matches("web::scope(").count(),
        1,
        "one scope in gateway/mod.rs"
    );
    assert!(root.contains("web::scope(\"/api\")"));
    let mut routes: BTreeSet<(String, String)> = scan_routes(&root, "mod.rs").into_iter().collect();
    for entry in std::fs::read_dir(&dir).expect("gateway dir") {
        let path = entry.expect("entry").path();
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") || stem == "mod" {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("source");
        for forbidden in ["web::resource(", "web::scope(", ".service("] {
            assert!(
                !source.contains(forbidden),
                "{stem}.rs uses {forbidden}: teach this scan about it"
            );
        }
        let found = scan_routes(&source, &stem);
        if found.is_empty() {
            continue;
        }
        assert!(
            root.contains(&format!(".configure({stem}::routes)")),
            "{stem}::routes is configured in the /api scope"
        );
        routes.extend(
            found
                .into_iter()
                .map(|(method, path)| (method, format!("/api{path}"))),
        );
    }
    routes
}

fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "x"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_route_is_documented_and_every_documented_route_is_served() {
    let gateway = Gateway::start().await;
    let document = fetch_document(&gateway).await;
    let documented = documented(&document);
    let registered = registered_routes();
    let undocumented: Vec<_> = registered.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&registered).collect();
    assert!(
        undocumented.is_empty(),
        "registered but not documented: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "documented but not registered: {unserved:?}"
    );
    assert!(documented.len() >= 25, "{documented:?}");

    // The running app agrees: each documented operation reaches a handler (no key: 401 or a
    // public answer), and every other method on a documented path is an unknown route.
    let paths: BTreeSet<&String> = documented.iter().map(|(_, path)| path).collect();
    for path in paths {
        for method in METHODS {
            let (status, body) = send(&gateway, method, &concrete(path), None, &[]).await;
            if documented.contains(&(method.to_owned(), path.clone())) {
                assert!(
                    status != 404 && status != 405,
                    "{method} {path} is documented but answers {status} {body}"
                );
            } else {
                assert!(
                    status == 404 || status == 405,
                    "{method} {path} answers {status} but is not documented"
                );
            }
        }
    }
}

fn resolve<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let pointer = reference.trim_start_matches('#');
            let target = document
                .pointer(pointer)
                .unwrap_or_else(|| panic!("$ref {reference} resolves"));
            resolve(document, target)
        }
        None => schema,
    }
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                out.push(reference.clone());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_hangs_together() {
    let gateway = Gateway::start().await;
    let document = fetch_document(&gateway).await;
    assert_eq!(document["openapi"], "3.1.0");
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(
        schemes["apiKey"],
        json!({ "type": "apiKey", "in": "header", "name": "X-API-Key", "description": schemes["apiKey"]["description"] })
    );
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    let mut refs = Vec::new();
    collect_refs(&document, &mut refs);
    for reference in &refs {
        assert!(
            document
                .pointer(reference.trim_start_matches('#'))
                .is_some(),
            "{reference}"
        );
    }
    let mut ids = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        let params: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for (method, operation) in item.as_object().unwrap() {
            let what = format!("{method} {path}");
            assert!(
                ids.insert(
                    operation["operationId"]
                        .as_str()
                        .expect("operationId")
                        .to_owned()
                ),
                "{what}: operationId unique"
            );
            let declared: BTreeSet<&str> = operation["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["in"] == "path")
                .filter_map(|p| p["name"].as_str())
                .collect();
            assert_eq!(declared, params, "{what}: path parameters");
            let responses = operation["responses"].as_object().expect("responses");
            assert!(
                responses.keys().any(|code| code.starts_with('2')),
                "{what}: a success"
            );
            let public = operation["security"] == json!([]);
            for code in ["401", "403"] {
                assert_eq!(
                    responses.contains_key(code),
                    !public,
                    "{what}: {code} iff it needs a key"
                );
            }
            for (code, response) in responses {
                if code.starts_with('4') || code.starts_with('5') {
                    let schema =
                        &resolve(&document, response)["content"]["application/json"]["schema"];
                    assert_eq!(
                        schema["$ref"], "#/components/schemas/Error",
                        "{what} {code}"
                    );
                }
            }
            if let Some(body) = operation.get("requestBody") {
                let schema = resolve(&document, &body["content"]["application/json"]["schema"]);
                assert_eq!(
                    schema["additionalProperties"], false,
                    "{what}: unknown fields are refused"
                );
            }
        }
    }
    // No schema exposes a secret value except the write-only PUT body.
    for (name, schema) in document["components"]["schemas"].as_object().unwrap() {
        if let Some(value) = schema["properties"].get("value") {
            assert_eq!(
                (name.as_str(), &value["writeOnly"]),
                ("PutSecret", &json!(true))
            );
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Checks `value` against `schema`: types, enums, required fields, and that every field the
/// value has is documented. Problems are appended with their JSON path.
fn check(document: &Value, schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
    let schema = resolve(document, schema);
    let allowed: Vec<&str> = match &schema["type"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let actual = kind(value);
    let integer_as_number = actual == "integer" && allowed.contains(&"number");
    if !allowed.is_empty() && !allowed.contains(&actual) && !integer_as_number {
        problems.push(format!("{at}: {actual} where the schema says {allowed:?}"));
        return;
    }
    if let Some(options) = schema["enum"].as_array() {
        if !options.contains(value) {
            problems.push(format!("{at}: {value} is not one of {options:?}"));
        }
    }
    match value {
        Value::Object(fields) => {
            for required in schema["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !fields.contains_key(required) {
                    problems.push(format!("{at}: required field {required} is missing"));
                }
            }
            for (name, field) in fields {
                let path = format!("{at}.{name}");
                if let Some(property) = schema["properties"].get(name) {
                    check(document, property, field, &path, problems);
                } else if schema["additionalProperties"].is_object() {
                    check(
                        document,
                        &schema["additionalProperties"],
                        field,
                        &path,
                        problems,
                    );
                } else {
                    problems.push(format!("{path}: field not documented"));
                }
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                check(
                    document,
                    &schema["items"],
                    item,
                    &format!("{at}[{index}]"),
                    problems,
                );
            }
        }
        _ => {}
    }
}

/// The documented template of a concrete path (`/api/sandboxes/sbx_…` → `/api/sandboxes/{id}`).
fn template_of<'a>(document: &'a Value, method: &str, path: &str) -> &'a str {
    let segments: Vec<&str> = path.split('?').next().unwrap_or(path).split('/').collect();
    let mut best: Option<(&str, usize)> = None;
    for (template, item) in document["paths"].as_object().unwrap() {
        let parts: Vec<&str> = template.split('/').collect();
        if parts.len() != segments.len() || item.get(method.to_lowercase()).is_none() {
            continue;
        }
        let literal = parts.iter().zip(&segments).filter(|(t, s)| t == s).count();
        let fits = parts
            .iter()
            .zip(&segments)
            .all(|(t, s)| t == s || t.starts_with('{'));
        if fits && best.is_none_or(|(_, count)| literal > count) {
            best = Some((template, literal));
        }
    }
    best.unwrap_or_else(|| panic!("{method} {path} matches no documented path"))
        .0
}

/// Asserts that a real answer is documented for its operation and status, with only
/// documented fields. An empty body must be documented without content.
pub fn assert_documented(document: &Value, method: &str, path: &str, status: u16, body: &Value) {
    let template = template_of(document, method, path);
    let operation = &document["paths"][template][method.to_lowercase()];
    let response = operation["responses"]
        .get(status.to_string())
        .unwrap_or_else(|| panic!("{method} {template} does not document status {status}: {body}"));
    let response = resolve(document, response);
    let content = &response["content"];
    if body.is_null() {
        assert!(
            content.is_null(),
            "{method} {template} {status}: documented with a body, answered none"
        );
        return;
    }
    let schema = &content["application/json"]["schema"];
    assert!(
        !schema.is_null(),
        "{method} {template} {status}: no JSON schema documented"
    );
    let mut problems = Vec::new();
    check(document, schema, body, "$", &mut problems);
    assert!(
        problems.is_empty(),
        "{method} {path} ({template}) {status}: {problems:#?}\n{body}"
    );
}

#[tokio::test]
async fn real_answers_use_only_documented_fields() {
    let gateway = fixtures::with_control(Gateway::start().await).await;
    let document = fetch_document(&gateway).await;
    let key = gateway.key.clone();
    let mut seen: BTreeMap<(String, String), BTreeSet<u16>> = BTreeMap::new();
    let (_, project) = gateway
        .as_acme(
            "POST",
            "/api/projects",
            Some(r#"{"name":"web","egressAllowlist":["api.example.test"]}"#),
        )
        .await;
    let project_id = project["id"].as_str().unwrap().parse().unwrap();
    let sandbox = fixtures::running_sandbox(&gateway, gateway.org, Some((project_id, "web"))).await;
    let checkpoint = fixtures::checkpoint(&gateway, gateway.org, sandbox).await;
    fixtures::snapshot(&gateway, gateway.org, "golden", checkpoint).await;
    let calls: Vec<(&str, String, Option<String>, Option<&str>)> = vec![
        (
            "POST",
            "/api/projects".into(),
            Some(r#"{"name":"api","template":"t","cpuCount":2}"#.into()),
            Some(&key),
        ),
        (
            "POST",
            "/api/projects".into(),
            Some(r#"{"name":"api"}"#.into()),
            Some(&key),
        ),
        (
            "POST",
            "/api/projects".into(),
            Some(r#"{"name":"Bad"}"#.into()),
            Some(&key),
        ),
        ("GET", "/api/projects".into(), None, Some(&key)),
        ("GET", "/api/projects/web".into(), None, Some(&key)),
        ("GET", "/api/projects/nope".into(), None, Some(&key)),
        (
            "PATCH",
            "/api/projects/api".into(),
            Some(r#"{"memoryMB":1024,"egressAllowlist":[]}"#.into()),
            Some(&key),
        ),
        (
            "PUT",
            "/api/projects/web/secrets/API_KEY".into(),
            Some(r#"{"value":"v1"}"#.into()),
            Some(&key),
        ),
        (
            "PUT",
            "/api/projects/web/secrets/API_KEY".into(),
            Some(r#"{"value":"v2","allowedHosts":["api.example.test"]}"#.into()),
            Some(&key),
        ),
        (
            "PUT",
            "/api/projects/web/secrets/PATH".into(),
            Some(r#"{"value":"v"}"#.into()),
            Some(&key),
        ),
        (
            "PUT",
            "/api/projects/web/secrets/BIG".into(),
            Some(json!({ "value": "v".repeat(70_000) }).to_string()),
            Some(&key),
        ),
        (
            "PUT",
            "/api/projects/web/secrets/OTHER".into(),
            Some(r#"{"value":"v"}"#.into()),
            Some(&key),
        ),
        ("GET", "/api/projects/web/secrets".into(), None, Some(&key)),
        (
            "DELETE",
            "/api/projects/web/secrets/OTHER".into(),
            None,
            Some(&key),
        ),
        ("GET", "/api/sandboxes".into(), None, Some(&key)),
        ("GET", "/api/sandboxes".into(), None, None),
        ("GET", "/api/sandboxes".into(), None, Some("osk_wrong")),
        ("GET", format!("/api/sandboxes/{sandbox}"), None, Some(&key)),
        ("GET", "/api/sandboxes/bad".into(), None, Some(&key)),
        (
            "GET",
            format!("/api/sandboxes/{sandbox}/allowed-hosts"),
            None,
            Some(&key),
        ),
        (
            "GET",
            format!("/api/sandboxes/{sandbox}/checkpoints"),
            None,
            Some(&key),
        ),
        (
            "POST",
            format!("/api/sandboxes/{sandbox}/exec"),
            Some(r#"{"cmd":[]}"#.into()),
            Some(&key),
        ),
        (
            "POST",
            "/api/snapshots".into(),
            Some(json!({ "name": "golden", "sandboxId": sandbox.to_string() }).to_string()),
            Some(&key),
        ),
        (
            "POST",
            "/api/sandboxes".into(),
            Some(r#"{"envs":{"PATH":"x"}}"#.into()),
            Some(&key),
        ),
        ("GET", "/api/snapshots".into(), None, Some(&key)),
        (
            "GET",
            "/api/events?subject=osb.cmd.%3E".into(),
            None,
            Some(&key),
        ),
        ("DELETE", "/api/projects/api".into(), None, Some(&key)),
        ("GET", "/healthz".into(), None, None),
        ("GET", "/readyz".into(), None, None),
    ];
    for (method, path, body, key) in calls {
        let headers: Vec<(&str, &str)> = key.iter().map(|key| ("X-API-Key", *key)).collect();
        let (status, answer) = send(&gateway, method, &path, body.as_deref(), &headers).await;
        let answer = if answer == json!("") {
            Value::Null
        } else {
            answer
        };
        assert_documented(&document, method, &path, status, &answer);
        let template = template_of(&document, method, &path).to_owned();
        seen.entry((method.to_owned(), template))
            .or_default()
            .insert(status);
    }
    // The calls above cover every status class the gateway gives without a worker.
    let statuses: BTreeSet<u16> = seen.values().flatten().copied().collect();
    for status in [200, 201, 204, 400, 401, 403, 404, 409, 413, 422] {
        assert!(
            statuses.contains(&status),
            "no call answered {status}: {seen:?}"
        );
    }
    let (status, metrics) = send(&gateway, "GET", "/metrics", None, &[]).await;
    assert_eq!(status, 200);
    assert!(
        metrics
            .as_str()
            .is_some_and(|text| text.contains("osb_sandboxes")),
        "{metrics}"
    );
}
