//! Leak-freedom: destroy removes namespaces, veths, nftables tables, cgroups, processes, mounts
//! and directories — over 50 create/destroy cycles, after a failed create, and after a worker
//! "crash" (the next runtime with the same prefix reaps what the dead one left).

use osb_vm::netns::CreateStep;
use osb_vm::{Runtime, RuntimeError};

use crate::support::{spec, unused_proxy, TestPki, TestWorker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_create_destroy_cycles_leak_nothing() {
    let worker = TestWorker::start(40).await;
    let pki = TestPki::new("unused.test");
    let before = worker.runtime.census().await.expect("census");
    assert!(before.is_empty(), "{before:?}");

    for cycle in 0..50 {
        let id = worker.create(spec(unused_proxy(), &pki.ca_pem)).await;
        if cycle == 0 {
            // The census really counts: one sandbox shows up everywhere.
            let during = worker.runtime.census().await.expect("census");
            assert_eq!(
                (
                    during.netns,
                    during.veths,
                    during.nft_tables,
                    during.sandbox_dirs
                ),
                (1, 1, 1, 1),
                "{during:?}"
            );
            assert!(
                during.cgroups >= 1 && during.processes >= 1 && during.mounts >= 1,
                "{during:?}"
            );
        }
        let out = worker.sh(id, "echo cycle").await;
        assert_eq!(out.stdout.trim(), "cycle");
        worker.runtime.destroy(id).await.expect("destroy");
    }
    let after = worker.runtime.census().await.expect("census");
    assert!(after.is_empty(), "leaked after 50 cycles: {after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_worker_reaps_what_a_crashed_one_left() {
    let mut worker = TestWorker::start(41).await;
    let pki = TestPki::new("unused.test");
    for _ in 0..3 {
        worker.create(spec(unused_proxy(), &pki.ca_pem)).await;
    }
    let left = worker.runtime.census().await.expect("census");
    assert_eq!(
        (left.netns, left.veths, left.nft_tables, left.sandbox_dirs),
        (3, 3, 3, 3),
        "{left:?}"
    );
    assert!(left.processes >= 3, "{left:?}");

    // Crash: the runtime vanishes without running any destructor (its processes keep running).
    std::mem::forget(worker.runtime.clone());
    worker.restart_runtime(41).await;
    let after = worker.runtime.census().await.expect("census");
    assert!(
        after.is_empty(),
        "the restarted worker left orphans: {after:?}"
    );

    // And the restarted worker works.
    let id = worker.create(spec(unused_proxy(), &pki.ca_pem)).await;
    assert_eq!(worker.sh(id, "echo alive").await.stdout.trim(), "alive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_create_undoes_everything_and_destroy_is_idempotent() {
    let worker = TestWorker::start(42).await;
    let pki = TestPki::new("unused.test");
    // A template whose directory disappears after registration: network, rules and cgroups are
    // built, then the overlay mount at boot fails.
    let template = tempfile::tempdir().expect("temp dir");
    for tool in ["bin/sh", "bin/sleep", "bin/umount", "usr/bin/env"] {
        let path = template.path().join(tool);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, "").expect("write");
    }
    worker
        .runtime
        .register_template("vanishing", template.path())
        .expect("register");
    let template_path = template.path().to_path_buf();
    drop(template);
    assert!(!template_path.exists());
    let mut broken = spec(unused_proxy(), &pki.ca_pem);
    broken.template = "vanishing".into();
    let error = worker
        .runtime
        .create(broken.clone())
        .await
        .expect_err("boot must fail");
    assert!(matches!(error, RuntimeError::Setup { .. }), "{error}");
    let after = worker.runtime.census().await.expect("census");
    assert!(after.is_empty(), "a failed create left {after:?}");
    // The id is free again, and the slot too: a good create works.
    broken.template = osb_vm::HOST_SYSTEM_TEMPLATE.into();
    let id = broken.id;
    worker
        .runtime
        .create(broken)
        .await
        .expect("create after failure");

    // Bad specs change nothing.
    let mut invalid = spec(unused_proxy(), &pki.ca_pem);
    invalid.egress_allowlist = vec!["*".into()];
    assert!(matches!(
        worker.runtime.create(invalid).await,
        Err(RuntimeError::InvalidSpec(_))
    ));
    let mut unknown = spec(unused_proxy(), &pki.ca_pem);
    unknown.template = "missing".into();
    assert!(matches!(
        worker.runtime.create(unknown).await,
        Err(RuntimeError::UnknownTemplate(_))
    ));

    worker.runtime.destroy(id).await.expect("destroy");
    worker
        .runtime
        .destroy(id)
        .await
        .expect("second destroy is harmless");
    assert!(worker.runtime.census().await.expect("census").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_after_any_create_step_undoes_everything() {
    let worker = TestWorker::start(43).await;
    let pki = TestPki::new("unused.test");
    for step in CreateStep::ALL {
        worker.runtime.inject_create_fault(Some(step));
        let error = worker
            .runtime
            .create(spec(unused_proxy(), &pki.ca_pem))
            .await
            .expect_err("the injected fault fails create");
        assert!(error.to_string().contains("fault injected"), "{error}");
        let census = worker.runtime.census().await.expect("census");
        assert!(census.is_empty(), "failing after {step:?} left {census:?}");
    }
    worker.runtime.inject_create_fault(None);
    // The address slot was released every time: the next sandbox gets the first slot.
    let id = worker.create(spec(unused_proxy(), &pki.ca_pem)).await;
    let info = worker.runtime.info(id).await.expect("info");
    assert_eq!(info.address, std::net::Ipv4Addr::new(100, 100, 43, 6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_root_with_nftables_the_netns_runtime_is_selected() {
    let temp = tempfile::tempdir().expect("temp dir");
    let data_dir = temp.path().join("data");
    let _guard = crate::support::ReapGuard::new("osbt46", &data_dir);
    let mut config = osb_vm::NetnsConfig::new("osbt46", &data_dir);
    config.address_pool = crate::support::pool(46);
    let runtime = osb_vm::select_runtime(config, std::sync::Arc::new(osb_vm::LogSink))
        .await
        .expect("a runtime");
    assert_eq!(runtime.isolation(), osb_vm::Isolation::Enforced);
}
