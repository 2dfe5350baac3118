//! Tests of the leaf cache: one mint under concurrent misses, expiry, and the count and byte
//! bounds with least-recently-used eviction.

use super::*;

fn cache_with(dir: &std::path::Path, bounds: CacheBounds) -> Arc<LeafCache> {
    let ca =
        Arc::new(CertificateAuthority::load_or_create(dir, Duration::from_secs(3600)).unwrap());
    Arc::new(LeafCache::with_bounds(
        ca,
        Duration::from_secs(600),
        bounds,
        Arc::new(ProxyMetrics::default()),
    ))
}

fn cache(dir: &std::path::Path) -> Arc<LeafCache> {
    cache_with(dir, CacheBounds::default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_mint_under_64_concurrent_misses() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache(dir.path());
    let barrier = Arc::new(tokio::sync::Barrier::new(64));
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let cache = Arc::clone(&cache);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                cache.server_config("burst.example.test").await.unwrap()
            })
        })
        .collect();
    let mut configs = Vec::new();
    for task in tasks {
        configs.push(task.await.unwrap());
    }
    assert_eq!(cache.metrics.cert_mints(), 1);
    assert!(configs
        .iter()
        .all(|config| Arc::ptr_eq(config, &configs[0])));
    assert!(cache.cached("burst.example.test").is_some());
}

#[tokio::test]
async fn expired_entries_are_minted_again() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Arc::new(
        CertificateAuthority::load_or_create(dir.path(), Duration::from_secs(3600)).unwrap(),
    );
    let metrics = Arc::new(ProxyMetrics::default());
    let cache = LeafCache::new(ca, Duration::ZERO, Arc::clone(&metrics));
    cache.server_config("a.test").await.unwrap();
    cache.server_config("a.test").await.unwrap();
    assert_eq!(metrics.cert_mints(), 2);
    assert!(cache.cached("a.test").is_none());
}

#[tokio::test]
async fn the_least_recently_used_host_goes_when_the_count_is_reached() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache_with(
        dir.path(),
        CacheBounds {
            max_entries: 3,
            max_bytes: usize::MAX,
        },
    );
    for host in ["a.test", "b.test", "c.test"] {
        cache.server_config(host).await.unwrap();
    }
    assert!(
        cache.cached("a.test").is_some(),
        "a is now the most recently used"
    );
    cache.server_config("d.test").await.unwrap();
    assert_eq!(cache.len(), 3);
    assert!(
        cache.cached("b.test").is_none(),
        "b was the least recently used"
    );
    for kept in ["a.test", "c.test", "d.test"] {
        assert!(cache.cached(kept).is_some(), "{kept}");
    }
}

#[tokio::test]
async fn the_byte_bound_holds_too() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache_with(
        dir.path(),
        CacheBounds {
            max_entries: 1000,
            max_bytes: 3 * (ENTRY_OVERHEAD + 2000),
        },
    );
    for i in 0..20 {
        cache.server_config(&format!("h{i}.test")).await.unwrap();
    }
    let bytes = cache.lock().bytes;
    assert!(bytes <= 3 * (ENTRY_OVERHEAD + 2000), "{bytes} bytes cached");
    assert!(cache.len() < 20 && !cache.is_empty());
    assert!(cache.cached("h19.test").is_some(), "the newest stays");
}
