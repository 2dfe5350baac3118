//! A directory rootfs registered as a template boots as the sandbox root (here a busybox tree
//! built by the test), with the generated /etc on top.

use osb_vm::Runtime;

use crate::support::{spec, unused_proxy, TestPki, TestWorker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_rootfs_template_boots() {
    let worker = TestWorker::start(50).await;
    let pki = TestPki::new("unused.test");
    let rootfs = tempfile::tempdir().expect("temp dir");
    let bin = rootfs.path().join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    std::fs::create_dir_all(rootfs.path().join("usr/bin")).expect("mkdir");
    std::fs::copy("/bin/busybox", bin.join("busybox")).expect("busybox-static is installed");
    for tool in ["sh", "sleep", "umount", "ls", "cat", "echo", "id"] {
        std::os::unix::fs::symlink("busybox", bin.join(tool)).expect("symlink");
    }
    std::os::unix::fs::symlink("/bin/busybox", rootfs.path().join("usr/bin/env")).expect("symlink");
    std::fs::write(rootfs.path().join("template-marker"), "tiny\n").expect("marker");
    worker
        .runtime
        .register_template("tiny", rootfs.path())
        .expect("register");

    let mut tiny = spec(unused_proxy(), &pki.ca_pem);
    tiny.template = "tiny".into();
    let id = worker.create(tiny).await;
    let mut request = osb_vm::ExecRequest::new([
        "sh",
        "-c",
        "cat /template-marker; ls /usr; id -u; ls /etc/ssl/certs",
    ]);
    request.env.insert("PATH".into(), "/bin:/usr/bin".into());
    let out = worker.runtime.exec(id, request).await.expect("exec");
    assert_eq!(out.exit_code, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "tiny");
    assert_eq!(lines[1], "bin", "only the template's /usr exists: {out:?}");
    assert_eq!(lines[2], "1000");
    assert!(out.stdout.contains("osb-proxy-ca.pem"));
}
