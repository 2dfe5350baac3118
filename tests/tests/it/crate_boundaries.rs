//! The "never imports" rules of the `api/` crates (docs/ARCHITECTURE.md, ADR 0014), checked on
//! the real dependency graph from `cargo metadata`: only normal dependencies count (a crate's
//! tests may use more), followed transitively where the rule is about what a crate can reach.
//! A second check reads the gateway's sources for the control-plane internals it must not use;
//! a third proves there is one `SecretValue` type from the vault to the proxy.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace root")
        .to_path_buf()
}

/// The resolved graph: package name → names of its normal (non-dev, non-build) dependencies,
/// and package name → its declared normal dependencies with their features.
struct Graph {
    normal: BTreeMap<String, BTreeSet<String>>,
    declared: BTreeMap<String, Vec<(String, Vec<String>)>>,
}

fn graph() -> Graph {
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(workspace_root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("metadata is JSON");
    let name_of: BTreeMap<&str, &str> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|package| {
            (
                package["id"].as_str().expect("id"),
                package["name"].as_str().expect("name"),
            )
        })
        .collect();
    let mut normal = BTreeMap::new();
    for node in metadata["resolve"]["nodes"].as_array().expect("resolve") {
        let name = name_of[node["id"].as_str().expect("node id")].to_owned();
        let deps: BTreeSet<String> = node["deps"]
            .as_array()
            .expect("deps")
            .iter()
            .filter(|dep| {
                dep["dep_kinds"]
                    .as_array()
                    .is_some_and(|kinds| kinds.iter().any(|kind| kind["kind"].is_null()))
            })
            .map(|dep| name_of[dep["pkg"].as_str().expect("dep id")].to_owned())
            .collect();
        normal
            .entry(name)
            .or_insert_with(BTreeSet::new)
            .extend(deps);
    }
    let mut declared = BTreeMap::new();
    for package in metadata["packages"].as_array().expect("packages") {
        let deps = package["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .filter(|dep| dep["kind"].is_null())
            .map(|dep| {
                let features = dep["features"]
                    .as_array()
                    .map(|list| {
                        list.iter()
                            .filter_map(|feature| feature.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                (dep["name"].as_str().expect("dep name").to_owned(), features)
            })
            .collect();
        declared.insert(package["name"].as_str().expect("name").to_owned(), deps);
    }
    Graph { normal, declared }
}

impl Graph {
    /// Everything `package` pulls in through normal dependencies, itself excluded.
    fn reachable(&self, package: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![package.to_owned()];
        while let Some(next) = todo.pop() {
            for dep in self.normal.get(&next).into_iter().flatten() {
                if seen.insert(dep.clone()) {
                    todo.push(dep.clone());
                }
            }
        }
        seen
    }

    fn direct(&self, package: &str) -> Vec<(String, Vec<String>)> {
        self.declared
            .get(package)
            .unwrap_or_else(|| panic!("{package} is a workspace package"))
            .clone()
    }
}

/// `(crate, forbidden crates it must not reach at all, why)`.
const NEVER_REACHES: &[(&str, &[&str], &str)] = &[
    (
        "osb-cli",
        &[
            "osb-gateway",
            "osb-control",
            "osb-worker",
            "osb-grpc",
            "osb-store",
            "osb-vault",
            "osbd",
            "tonic",
            "actix-web",
            "sea-orm",
        ],
        "the CLI is a client of the REST API only",
    ),
    (
        "osb-worker",
        &["osb-store", "osb-vault", "sea-orm", "actix-web"],
        "the worker never touches the store",
    ),
    (
        "osb-control",
        &["actix-web", "osb-gateway"],
        "the control plane never imports actix-web",
    ),
    (
        "osb-grpc",
        &[
            "osb-store",
            "osb-bus",
            "osb-vault",
            "actix",
            "actix-web",
            "sea-orm",
        ],
        "the gRPC link knows nothing of the store, the bus or actix",
    ),
];

/// `(crate, forbidden direct dependencies, why)`: the gateway reaches tonic through the
/// control plane, but must never name it, nor the link, itself.
const NEVER_DEPENDS_ON: &[(&str, &[&str], &str)] = &[(
    "osb-gateway",
    &[
        "tonic",
        "tonic-prost",
        "prost",
        "osb-grpc",
        "osb-worker",
        "osb-saga",
        "osb-project",
        "osb-placement",
    ],
    "the gateway talks to the control plane through osb-control's surface only",
)];

#[test]
fn api_crates_keep_their_never_rules() {
    let graph = graph();
    let mut broken = Vec::new();
    for (package, forbidden, why) in NEVER_REACHES {
        let reachable = graph.reachable(package);
        assert!(
            !reachable.is_empty(),
            "{package} has no dependencies in the graph: is it still a workspace member?"
        );
        for name in *forbidden {
            if reachable.contains(*name) {
                broken.push(format!("{package} reaches {name} ({why})"));
            }
        }
    }
    for (package, forbidden, why) in NEVER_DEPENDS_ON {
        for (dep, features) in graph.direct(package) {
            if forbidden.contains(&dep.as_str()) {
                broken.push(format!("{package} depends on {dep} ({why})"));
            }
            if dep == "osb-proto" && features.iter().any(|feature| feature == "grpc") {
                broken.push(format!(
                    "{package} turns on osb-proto's `grpc` feature ({why})"
                ));
            }
        }
    }
    assert!(broken.is_empty(), "crate boundaries broken: {broken:#?}");
}

#[test]
fn the_gateway_uses_no_control_plane_internals() {
    let dir = workspace_root().join("api/gateway/src");
    let mut files = Vec::new();
    let mut todo = vec![dir.clone()];
    while let Some(next) = todo.pop() {
        for entry in std::fs::read_dir(&next).expect("gateway sources").flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }
    assert!(
        files.len() > 10,
        "found the gateway's sources ({})",
        files.len()
    );
    // Saga parameters, the saga context and the wire types are the control plane's business.
    let forbidden = [
        "tonic",
        "osb_grpc",
        "osb_proto::grpc",
        "sagas::",
        ".plane()",
        "ControlPlane",
    ];
    let mut found = Vec::new();
    for path in &files {
        let source = std::fs::read_to_string(path).expect("source");
        for (number, line) in source.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for needle in forbidden {
                if code.contains(needle) {
                    found.push(format!(
                        "{}:{}: {needle}",
                        path.strip_prefix(&dir).unwrap_or(path).display(),
                        number + 1
                    ));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the gateway reaches into the control plane: {found:#?}"
    );
}

/// One `SecretValue` end to end: the vault's and the proxy's are `osb_proto`'s type (this
/// compiles only while they are), so a value moves between them without a copy or a `String`.
#[test]
fn one_secret_value_type_from_the_vault_to_the_proxy() {
    fn vault_to_proxy(value: osb_vault::SecretValue) -> osb_proxy::SecretValue {
        value
    }
    let value: osb_proto::SecretValue = vault_to_proxy(osb_proto::SecretValue::from("v"));
    assert_eq!(value.expose_bytes(), b"v");
    assert_eq!(format!("{value:?}"), "SecretValue([redacted])");
}
