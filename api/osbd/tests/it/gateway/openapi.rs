//! The OpenAPI document is kept true: every route registered in the gateway's source is
//! documented and every documented route is served (both directions, by reading the route
//! registrations and by requesting each path with each method), the document hangs together
//! (every `$ref` resolves, every path parameter is declared, key-protected operations declare
//! 401 and 403), and real answers use only documented fields, with documented types.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::fixtures::{self, send};
use super::schema_check::{assert_documented, resolve};
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
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../gateway/src");
    let root = std::fs::read_to_string(dir.join("lib.rs")).expect("gateway/src/lib.rs");
    // One scope, `/api`; resources register plain routes only (anything else would escape
    // this scan, so it fails instead).
    assert_eq!(
        root.matches("web::scope(").count(),
        1,
        "one scope in gateway/src/lib.rs"
    );
    assert!(root.contains("web::scope(\"/api\")"));
    let mut routes: BTreeSet<(String, String)> = scan_routes(&root, "lib.rs").into_iter().collect();
    for entry in std::fs::read_dir(&dir).expect("gateway dir") {
        let path = entry.expect("entry").path();
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") || stem == "lib" {
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

/// A concrete path for a template: each `{param}` becomes the parameter's documented
/// `example`, or `x`.
fn concrete(document: &Value, template: &str) -> String {
    let example = |name: &str| -> Option<String> {
        let item = document["paths"][template].as_object()?;
        item.values()
            .filter_map(|operation| operation["parameters"].as_array())
            .flatten()
            .find(|parameter| parameter["name"] == name && parameter["in"] == "path")
            .and_then(|parameter| parameter["example"].as_str())
            .map(str::to_owned)
    };
    template
        .split('/')
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => example(name).unwrap_or_else(|| "x".to_owned()),
                None => segment.to_owned(),
            },
        )
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
            let (status, body) =
                send(&gateway, method, &concrete(&document, path), None, &[]).await;
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

#[tokio::test]
async fn real_answers_use_only_documented_fields() {
    let gateway = fixtures::with_control(Gateway::start().await).await;
    let document = fetch_document(&gateway).await;
    let body = r#"{"name":"web","egressAllowlist":["api.example.test"]}"#;
    let (_, project) = gateway.as_acme("POST", "/api/projects", Some(body)).await;
    let project_id = project["id"].as_str().unwrap().parse().unwrap();
    let org = gateway.org;
    let sandbox = fixtures::running_sandbox(&gateway, org, Some((project_id, "web"))).await;
    let checkpoint = fixtures::checkpoint(&gateway, org, sandbox).await;
    fixtures::snapshot(&gateway, org, "golden", checkpoint).await;
    // At its checkpoint-bytes quota: a new checkpoint is a documented 409 (ADR 0032).
    gateway
        .store
        .set_org_quotas(
            org,
            osb_store::OrgQuotas {
                checkpoint_bytes: Some(fixtures::CHECKPOINT_BYTES),
                ..Default::default()
            },
        )
        .await
        .expect("quota");
    let big = json!({ "value": "v".repeat(70_000) }).to_string();
    let duplicate = json!({ "name": "golden", "sandboxId": sandbox.to_string() }).to_string();
    let (key, wrong) = (Some(gateway.key.as_str()), Some("osk_wrong"));
    #[rustfmt::skip]
    let calls: Vec<(&str, String, Option<&str>, Option<&str>)> = vec![
        ("POST", "/api/projects".into(), Some(r#"{"name":"api","template":"t","cpuCount":2}"#), key),
        ("POST", "/api/projects".into(), Some(r#"{"name":"api"}"#), key),
        ("POST", "/api/projects".into(), Some(r#"{"name":"Bad"}"#), key),
        ("GET", "/api/projects".into(), None, key),
        ("GET", "/api/projects/web".into(), None, key),
        ("GET", "/api/projects/nope".into(), None, key),
        ("PATCH", "/api/projects/api".into(), Some(r#"{"memoryMB":1024,"egressAllowlist":[]}"#), key),
        ("PUT", "/api/projects/api".into(), Some(r#"{"cpuCount":2}"#), key),
        ("GET", "/api/projects?limit=1".into(), None, key),
        ("GET", "/api/projects?limit=0".into(), None, key),
        ("DELETE", format!("/api/sandboxes/{sandbox}/checkpoints/{checkpoint}"), None, key),
        ("DELETE", "/api/snapshots/golden".into(), None, key),
        ("PUT", "/api/projects/web/secrets/API_KEY".into(), Some(r#"{"value":"v1"}"#), key),
        ("PUT", "/api/projects/web/secrets/API_KEY".into(), Some(r#"{"value":"v2","allowedHosts":["api.example.test"]}"#), key),
        ("PUT", "/api/projects/web/secrets/PATH".into(), Some(r#"{"value":"v"}"#), key),
        ("PUT", "/api/projects/web/secrets/BIG".into(), Some(&big), key),
        ("PUT", "/api/projects/web/secrets/OTHER".into(), Some(r#"{"value":"v"}"#), key),
        ("GET", "/api/projects/web/secrets".into(), None, key),
        ("DELETE", "/api/projects/web/secrets/OTHER".into(), None, key),
        ("GET", "/api/sandboxes".into(), None, key),
        ("GET", "/api/sandboxes".into(), None, None),
        ("GET", "/api/sandboxes".into(), None, wrong),
        ("GET", format!("/api/sandboxes/{sandbox}"), None, key),
        ("GET", "/api/sandboxes/bad".into(), None, key),
        ("GET", format!("/api/sandboxes/{sandbox}/allowed-hosts"), None, key),
        ("GET", format!("/api/sandboxes/{sandbox}/checkpoints"), None, key),
        ("POST", format!("/api/sandboxes/{sandbox}/checkpoints"), None, key),
        ("POST", format!("/api/sandboxes/{sandbox}/exec"), Some(r#"{"cmd":[]}"#), key),
        ("POST", "/api/snapshots".into(), Some(&duplicate), key),
        ("POST", "/api/sandboxes".into(), Some(r#"{"envs":{"PATH":"x"}}"#), key),
        ("GET", "/api/snapshots".into(), None, key),
        ("GET", "/api/events?subject=osb.cmd.%3E".into(), None, key),
        ("DELETE", "/api/projects/api".into(), None, key),
        ("GET", "/healthz".into(), None, None),
        ("GET", "/readyz".into(), None, None),
    ];
    let mut statuses = BTreeSet::new();
    for (method, path, body, key) in calls {
        let headers: Vec<(&str, &str)> = key.iter().map(|key| ("X-API-Key", *key)).collect();
        let (status, answer) = send(&gateway, method, &path, body, &headers).await;
        let answer = if answer == json!("") {
            Value::Null
        } else {
            answer
        };
        assert_documented(&document, method, &path, status, &answer);
        statuses.insert(status);
    }
    // Checkpoints and snapshots carry their size.
    let listed = send(
        &gateway,
        "GET",
        &format!("/api/sandboxes/{sandbox}/checkpoints"),
        None,
        &[("X-API-Key", gateway.key.as_str())],
    )
    .await
    .1;
    assert_eq!(
        listed[0]["sizeBytes"],
        fixtures::CHECKPOINT_BYTES,
        "{listed}"
    );
    let schemas = &document["components"]["schemas"];
    for schema in ["Checkpoint", "Snapshot"] {
        assert!(
            schemas[schema]["required"]
                .as_array()
                .is_some_and(|required| required.contains(&json!("sizeBytes"))),
            "{schema} documents sizeBytes"
        );
    }
    // The calls above give every status the gateway gives without a worker.
    for status in [200, 201, 204, 400, 401, 403, 404, 409, 413, 422, 503] {
        assert!(statuses.contains(&status), "no call answered {status}");
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
