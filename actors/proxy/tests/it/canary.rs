//! The canary: one known value used in every way a sandbox can use it (headers, Basic auth, path,
//! body, HTTP/2 and HTTP/1.1 — so both front ends, hyper and the express lane — reflection,
//! refusals). Afterwards the value must not appear in anything the
//! sandbox side received, in captured logs (all crates at trace level), or in any event; and the
//! token must not appear in logs or events either.

use http::Request;

use crate::support::client::{body, received_by_sandbox};
use crate::support::harness::{captured_logs, token, Harness};

const CANARY: &str = "CANARY-7f3a9c1e-never-leak";

fn contains(haystack: &[u8], needle: &str) -> bool {
    memchr::memmem::find(haystack, needle.as_bytes()).is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_canary_value_never_reaches_the_sandbox_logs_or_events() {
    let h = Harness::start().await;
    let allow = vec![h.at("api.example.test"), h.at("other.example.test")];
    let pinned = vec![h.at("api.example.test")];
    h.sandbox(2, &allow, &[("CANARY_KEY", 1, CANARY, &pinned)]);
    let t = token(1);
    let header = format!("X-Api-Key: {t}");
    let user = format!("u:{t}");
    let reflect = format!("X-Reflect: {t}");
    let json = format!("{{\"k\":\"{t}\"}}");
    let url = |path: &str| h.url("api.example.test", path);
    let runs: Vec<Vec<String>> = vec![
        vec!["-i".into(), "-H".into(), header.clone(), url("/echo")],
        vec![
            "-i".into(),
            "-u".into(),
            user,
            url(&format!("/p/{t}/echo?q={t}")),
        ],
        vec![
            "-i".into(),
            "--data-binary".into(),
            json.clone(),
            url("/echo"),
        ],
        vec![
            "-i".into(),
            "-H".into(),
            "Transfer-Encoding: chunked".into(),
            "--data-binary".into(),
            json,
            url("/echo"),
        ],
        vec![
            "-i".into(),
            "--http2".into(),
            "-H".into(),
            header.clone(),
            url("/echo"),
        ],
        vec!["-i".into(), "-H".into(), reflect, url("/split-reflect")],
        vec![
            "-i".into(),
            "-H".into(),
            header.clone(),
            h.url("other.example.test", "/echo"),
        ],
    ];
    // Every run twice: as curl negotiates (HTTP/2, hyper's front end) and with --http1.1 (the
    // express lane, ADR 0107; chunked uploads move to hyper mid-connection).
    for http1 in [false, true] {
        for args in &runs {
            let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
            if http1 && !args.contains(&"--http2") {
                args.insert(0, "--http1.1");
            }
            let out = h.curl(2, &args).await;
            assert!(out.status == 200 || out.status == 403, "{out:?}");
        }
    }
    for http2 in [true, false] {
        let mut client = h.client(2, "api.example.test", http2).await;
        let path = if http2 {
            url("/echo")
        } else {
            "/echo".to_owned()
        };
        let request = Request::post(path)
            .header("host", h.at("api.example.test"))
            .header("x-api-key", t.as_str())
            .body(body(format!("{t}{t}")))
            .unwrap();
        assert_eq!(client.send(request).await.0, 200);
    }

    assert!(
        h.proxy.metrics().express_requests() > 0,
        "the express lane carried part of the canary traffic"
    );
    // The origin did get the value: the checks below are not vacuous.
    assert!(h
        .origin
        .requests()
        .iter()
        .any(|r| contains(&r.all_bytes(), CANARY)));
    let sandbox_side = received_by_sandbox().lock().unwrap().clone();
    assert!(
        contains(&sandbox_side, t.as_str()),
        "reflections should show the token"
    );
    assert!(
        !contains(&sandbox_side, CANARY),
        "the sandbox received the secret value"
    );
    let logs = captured_logs();
    assert!(!logs.is_empty());
    assert!(
        !contains(&logs, CANARY),
        "a log line contains the secret value"
    );
    assert!(
        !contains(&logs, t.as_str()),
        "a log line contains a sealed token"
    );
    let events = serde_json::to_string(&h.events()).unwrap();
    assert!(events.contains("secret_used") && events.contains("egress_blocked"));
    assert!(!events.contains(CANARY) && !events.contains(t.as_str()));
    assert!(!format!(
        "{:?}",
        h.proxy
            .registry()
            .lookup(crate::support::harness::sandbox_ip(2))
    )
    .contains(CANARY));
}
