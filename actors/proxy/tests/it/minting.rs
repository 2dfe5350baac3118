//! No certificate minting before policy (issue 11 item 5): the transparent TLS listener checks
//! the source and the SNI against the session's egress allowlist before it mints a leaf, refuses
//! without minting otherwise (the refusal is an event), and caps how fast one source can make it
//! mint.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;

use crate::support::client::{connect_from, tls_config};
use crate::support::harness::{sandbox_ip, Harness};

/// Tries a TLS handshake with `sni` on the transparent listener: `Ok` when it completed, the
/// client's error otherwise.
async fn try_handshake(h: &Harness, last: u8, sni: &str) -> Result<(), String> {
    let transparent = h.proxy.transparent_addr().unwrap();
    let stream = connect_from(sandbox_ip(last), transparent).await;
    let connector =
        tokio_rustls::TlsConnector::from(tls_config(h.proxy.ca_cert_pem(), &[b"http/1.1"]));
    let name = ServerName::try_from(sni.to_owned()).unwrap();
    match tokio::time::timeout(Duration::from_secs(10), connector.connect(name, stream)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

async fn handshake(h: &Harness, last: u8, sni: &str) -> bool {
    try_handshake(h, last, sni).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_source_makes_the_proxy_mint_nothing() {
    let h = Harness::start().await;
    assert!(!handshake(&h, 9, "api.example.test").await);
    assert_eq!(h.proxy.metrics().cert_mints(), 0);
    assert!(h.proxy.leaf_cache().cached("api.example.test").is_none());
    let events = format!("{:?}", h.events());
    assert!(events.contains("UnknownSource"), "{events}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sni_outside_the_allowlist_is_refused_without_minting() {
    let h = Harness::start().await;
    h.sandbox(2, &[h.at("api.example.test")], &[]);
    let refused = try_handshake(&h, 2, "evil.test").await.unwrap_err();
    assert!(
        refused.contains("AccessDenied"),
        "the client is told with a TLS alert: {refused}"
    );
    assert!(
        h.proxy.leaf_cache().cached("evil.test").is_none(),
        "minted for a refused host"
    );
    let events = format!("{:?}", h.events());
    assert!(
        events.contains("HostNotAllowed") && events.contains("evil.test"),
        "{events}"
    );
    // The allowed host still works.
    assert!(handshake(&h, 2, "api.example.test").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_source_cannot_make_the_proxy_mint_without_bound() {
    let h = Harness::start().await;
    h.sandbox(2, &[format!("*.example.test:{}", h.port())], &[]);
    let h = Arc::new(h);
    let mut completed = 0;
    for i in 0..40 {
        if handshake(&h, 2, &format!("h{i}.example.test")).await {
            completed += 1;
        }
    }
    let mints = h.proxy.metrics().cert_mints();
    assert!(
        mints < 40 && completed < 40,
        "{mints} mints, {completed} handshakes for one source"
    );
    let events = format!("{:?}", h.events());
    assert!(events.contains("RateLimited"), "{events}");
}
