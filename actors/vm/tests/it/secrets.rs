//! The sandbox sees sealed tokens, never secret values: its environment holds `NAME=osb_sealed_…`
//! for each secret, user envs in plain, the proxy and CA variables; a canary value known only to
//! the test appears nowhere in the sandbox's environment, files or checkpoints (the runtime is
//! never given it, and the test proves the tokens are what is there instead).

use osb_proto::SEALED_TOKEN_PREFIX;
use osb_vm::Runtime;

use crate::support::{spec_with_secret, token, unused_proxy, TestPki, TestWorker};

pub(crate) fn grep_tree(dir: &std::path::Path, needle: &str) -> Vec<std::path::PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.filter_map(Result::ok).map(|entry| entry.path()));
            }
        } else if meta.is_file() && file_contains(&path, needle.as_bytes()) {
            // Every file, the sandbox disk images (ADR 0207) included, read in chunks.
            hits.push(path);
        }
    }
    hits
}

fn file_contains(path: &std::path::Path, needle: &[u8]) -> bool {
    use std::io::Read;
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let mut window = Vec::new();
    let mut chunk = vec![0u8; 1 << 20];
    let zeros = vec![0u8; 1 << 20];
    loop {
        let Ok(read) = file.read(&mut chunk) else {
            return false;
        };
        if read == 0 {
            return false;
        }
        if chunk[..read] == zeros[..read] && !needle.contains(&0) {
            // A run of zeros (the holes of a sparse disk image) breaks any match.
            window.clear();
            continue;
        }
        window.extend_from_slice(&chunk[..read]);
        if window.windows(needle.len()).any(|part| part == needle) {
            return true;
        }
        // Keep the tail: a match may straddle two chunks.
        let keep = needle.len().saturating_sub(1).min(window.len());
        window.drain(..window.len() - keep);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_shows_only_sealed_tokens_and_the_canary_is_nowhere() {
    environment_shows_only_sealed_tokens_and_the_canary_is_nowhere_on(TestWorker::start(20).await)
        .await;
}

/// The same on sandboxes claimed from a warm pool (ADR 0208).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_shows_only_sealed_tokens_and_the_canary_is_nowhere_claimed() {
    environment_shows_only_sealed_tokens_and_the_canary_is_nowhere_on(
        TestWorker::start_pooled(120, 4).await,
    )
    .await;
}

async fn environment_shows_only_sealed_tokens_and_the_canary_is_nowhere_on(worker: TestWorker) {
    let pki = TestPki::new("unused.test");
    // The canary is the "real" secret value; only the test knows it.
    let canary = format!("canary-{}", uuid::Uuid::new_v4().simple());
    let secret_token = token();
    let mut sandbox_spec =
        spec_with_secret(unused_proxy(), &pki.ca_pem, "OPENAI_API_KEY", secret_token);
    sandbox_spec
        .user_envs
        .insert("MODE".into(), "plain-user-value".into());
    assert!(!serde_json::to_string(&sandbox_spec)
        .expect("json")
        .contains(&canary));
    let id = worker.create(sandbox_spec).await;

    let env = worker
        .sh(id, "env; cat /proc/self/environ | tr '\\0' '\\n'")
        .await;
    assert!(
        env.stdout
            .contains(&format!("OPENAI_API_KEY={}", secret_token.as_str())),
        "{env:?}"
    );
    assert!(env.stdout.contains("MODE=plain-user-value"));
    assert!(!env.stdout.contains(&canary));
    for line in env
        .stdout
        .lines()
        .filter(|line| line.starts_with("OPENAI_API_KEY="))
    {
        let value = line.trim_start_matches("OPENAI_API_KEY=");
        assert!(
            value.starts_with(SEALED_TOKEN_PREFIX) && value.len() == 43,
            "{line}"
        );
    }
    let info = worker.runtime.info(id).await.expect("info");
    for name in ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"] {
        assert!(
            env.stdout
                .contains(&format!("{name}=http://{}:", info.gateway)),
            "{name} missing"
        );
    }
    for name in [
        "NO_PROXY=",
        "SSL_CERT_FILE=",
        "NODE_EXTRA_CA_CERTS=",
        "REQUESTS_CA_BUNDLE=",
        "CURL_CA_BUNDLE=",
        "GIT_SSL_CAINFO=",
        "DENO_CERT=",
    ] {
        assert!(env.stdout.contains(name), "{name} missing");
    }
    // The CA files the variables name exist inside and hold the proxy CA.
    let ca = worker
        .sh(
            id,
            "cat \"$NODE_EXTRA_CA_CERTS\"; grep -c 'BEGIN CERTIFICATE' \"$SSL_CERT_FILE\"",
        )
        .await;
    assert!(ca.stdout.contains(pki.ca_pem.trim()), "{ca:?}");

    // Programs store what they see; a checkpoint copies it. Neither holds the canary.
    worker
        .sh(
            id,
            "env > /workspace/env-dump.txt; mkdir -p /tmp/x && env > /tmp/x/env",
        )
        .await;
    let checkpoint = worker.runtime.checkpoint(id).await.expect("checkpoint");
    let sandbox_tree = worker.data_dir.join("sandboxes");
    let checkpoint_tree = worker.data_dir.join("checkpoints");
    assert!(grep_tree(&sandbox_tree, &canary).is_empty());
    assert!(grep_tree(&checkpoint_tree, &canary).is_empty());
    // The token is in the files the sandbox wrote, which proves the search looks at them.
    assert!(!grep_tree(&sandbox_tree, secret_token.as_str()).is_empty());
    // The checkpoint's metadata names the secret and the token id, never the token.
    let meta = std::fs::read_to_string(
        checkpoint_tree
            .join(checkpoint.checkpoint_id.to_string())
            .join("meta.json"),
    )
    .expect("meta.json");
    assert!(meta.contains("OPENAI_API_KEY"));
    assert!(meta.contains(secret_token.short_id()));
    assert!(!meta.contains(secret_token.as_str()));
    assert!(!meta.contains("plain-user-value"));
}
