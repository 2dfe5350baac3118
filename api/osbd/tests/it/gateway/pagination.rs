//! Cursor pagination on every list endpoint: walking `X-Next-Cursor` (and the `Link` header)
//! yields every item once in the documented order, the last page has neither header, the body
//! is always a JSON array, and a bad `limit`, a malformed cursor, a cursor of another list or
//! of another org, and an unknown query parameter are 400 naming the parameter.

use std::collections::BTreeMap;

use actix_web::{test, web, App};
use serde_json::Value;

use super::fixtures::{self, send};
use super::{error_code, Gateway};

/// `GET path` as acme: (status, response headers, body).
async fn get(gateway: &Gateway, path: &str) -> (u16, BTreeMap<String, String>, Value) {
    fixtures::get_as(gateway, &gateway.key, path).await
}

/// Follows the cursor from `first` to the end; returns each page's `field` values.
async fn walk(gateway: &Gateway, first: &str, field: &str) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut next = Some(first.to_owned());
    while let Some(path) = next.take() {
        let (status, headers, body) = get(gateway, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
        let items = body.as_array().expect("a JSON array");
        pages.push(
            items
                .iter()
                .map(|item| item[field].as_str().unwrap().to_owned())
                .collect(),
        );
        match (headers.get("x-next-cursor"), headers.get("link")) {
            (Some(cursor), Some(link)) => {
                let target = link
                    .strip_prefix('<')
                    .and_then(|rest| rest.split_once(">; rel=\"next\""))
                    .map(|(target, _)| target.to_owned())
                    .unwrap_or_else(|| panic!("Link {link}"));
                assert!(target.contains(&format!("cursor={cursor}")), "{link}");
                assert!(
                    target.starts_with(path.split('?').next().unwrap()),
                    "{link}"
                );
                next = Some(target);
            }
            (None, None) => {}
            other => panic!("X-Next-Cursor and Link come together: {other:?}"),
        }
    }
    pages
}

#[tokio::test]
async fn every_list_pages_with_a_cursor() {
    let gateway = fixtures::with_control(Gateway::start().await).await;
    let names = [
        "echo", "alpha", "delta", "bravo", "foxtrot", "charlie", "golf",
    ];
    for name in names {
        let (status, _) = gateway
            .as_acme(
                "POST",
                "/api/projects",
                Some(&format!(r#"{{"name":"{name}"}}"#)),
            )
            .await;
        assert_eq!(status, 201);
    }
    for name in names {
        let (status, _) = gateway
            .as_acme(
                "PUT",
                &format!("/api/projects/alpha/secrets/S_{}", name.to_uppercase()),
                Some(r#"{"value":"v"}"#),
            )
            .await;
        assert!(status == 201 || status == 200, "{status}");
    }
    let mut sorted = names.map(str::to_owned).to_vec();
    sorted.sort();
    let pages = walk(&gateway, "/api/projects?limit=3", "name").await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 1]);
    assert_eq!(pages.concat(), sorted);
    assert_eq!(
        walk(&gateway, "/api/projects", "name").await,
        [sorted.clone()]
    );
    let exact = walk(&gateway, "/api/projects?limit=7", "name").await;
    assert_eq!(exact.len(), 1, "a full last page has no next");
    let secrets = walk(&gateway, "/api/projects/alpha/secrets?limit=2", "name").await;
    assert_eq!(secrets.len(), 4);
    assert_eq!(secrets.concat().len(), 7);

    let org = gateway.org;
    let mut sandboxes = Vec::new();
    for _ in 0..5 {
        sandboxes.push(
            fixtures::running_sandbox(&gateway, org, None)
                .await
                .to_string(),
        );
    }
    let parent: osb_proto::SandboxId = sandboxes[0].parse().unwrap();
    let mut checkpoints = Vec::new();
    for index in 0..5 {
        let checkpoint = fixtures::checkpoint(&gateway, org, parent).await;
        fixtures::snapshot(&gateway, org, &format!("snap-{index}"), checkpoint).await;
        checkpoints.push(checkpoint.to_string());
    }
    let newest_first = |ids: &[String]| ids.iter().rev().cloned().collect::<Vec<_>>();
    let pages = walk(&gateway, "/api/sandboxes?limit=2", "sandboxID").await;
    assert_eq!(pages.concat(), newest_first(&sandboxes));
    let pages = walk(
        &gateway,
        &format!("/api/sandboxes/{parent}/checkpoints?limit=2"),
        "checkpointID",
    )
    .await;
    assert_eq!(pages.concat(), newest_first(&checkpoints));
    let pages = walk(&gateway, "/api/snapshots?limit=4", "name").await;
    assert_eq!(
        pages.concat(),
        (0..5).map(|i| format!("snap-{i}")).collect::<Vec<_>>()
    );

    // Empty lists are [] with no cursor.
    let (status, headers, body) = get(&gateway, "/api/projects/bravo/secrets?limit=1").await;
    assert_eq!((status, body), (200, serde_json::json!([])));
    assert!(!headers.contains_key("x-next-cursor"));
}

#[tokio::test]
async fn bad_limits_and_cursors_are_refused_by_name() {
    let gateway = fixtures::with_control(Gateway::start().await).await;
    for name in ["a", "b", "c"] {
        gateway
            .as_acme(
                "POST",
                "/api/projects",
                Some(&format!(r#"{{"name":"{name}"}}"#)),
            )
            .await;
    }
    let (_, headers, _) = get(&gateway, "/api/projects?limit=1").await;
    let cursor = headers["x-next-cursor"].clone();
    let sandbox = fixtures::running_sandbox(&gateway, gateway.org, None).await;
    let (_, theirs) = send(&gateway, "GET", "/api/projects?limit=1", None, &[]).await;
    assert_eq!(error_code(&theirs), "missing_api_key");
    // The other org's cursor: create its own projects and page them.
    for name in ["x", "y"] {
        send(
            &gateway,
            "POST",
            "/api/projects",
            Some(&format!(r#"{{"name":"{name}"}}"#)),
            &[("X-API-Key", &gateway.other_key)],
        )
        .await;
    }
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(gateway.state.clone()))
            .configure(osb_gateway::configure),
    )
    .await;
    let response = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/api/projects?limit=1")
            .insert_header(("X-API-Key", gateway.other_key.clone()))
            .to_request(),
    )
    .await;
    let foreign = response
        .headers()
        .get("x-next-cursor")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();

    let cases: Vec<(String, &str)> = vec![
        ("/api/projects?limit=0".into(), "limit"),
        ("/api/projects?limit=501".into(), "limit"),
        ("/api/projects?limit=ten".into(), "limit"),
        ("/api/projects?limit=-1".into(), "limit"),
        ("/api/projects?limit=1&limit=2".into(), "limit"),
        ("/api/projects?cursor=".into(), "cursor"),
        ("/api/projects?cursor=%21%21".into(), "cursor"),
        ("/api/projects?cursor=bm90IG91cnM".into(), "cursor"),
        (format!("/api/projects?cursor={foreign}"), "cursor"),
        (format!("/api/snapshots?cursor={cursor}"), "cursor"),
        (format!("/api/sandboxes?cursor={cursor}"), "cursor"),
        (
            format!("/api/sandboxes/{sandbox}/checkpoints?cursor={cursor}"),
            "cursor",
        ),
        (format!("/api/projects/a/secrets?cursor={cursor}"), "cursor"),
        ("/api/projects?limt=5".into(), "limt"),
        ("/api/sandboxes?offset=5".into(), "offset"),
    ];
    for (path, named) in cases {
        let (status, body) = gateway.as_acme("GET", &path, None).await;
        assert_eq!(
            (status, error_code(&body).as_str()),
            (400, "invalid_input"),
            "{path}: {body}"
        );
        assert!(
            body["error"].as_str().unwrap().contains(named),
            "{path}: {body}"
        );
    }
    // The good cursor still works, and resumes after "a".
    let (status, _, body) = get(&gateway, &format!("/api/projects?cursor={cursor}")).await;
    assert_eq!(status, 200);
    assert_eq!(body[0]["name"], "b");
}
