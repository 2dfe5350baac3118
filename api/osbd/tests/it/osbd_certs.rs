//! `osbd certs init|issue` through the real binary: the files exist with private keys mode 0600,
//! nothing is overwritten without `--force` (and a refusal changes nothing), issued certificates
//! chain to the CA and carry the requested identity, and the output never contains a key.

// Helpers outside #[test] fns unwrap too; clippy's test exemption does not reach them.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use osb_grpc::{PeerIdentity, PeerRole};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};

use crate::{osbd, text};

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.file_name().to_string_lossy().into_owned(),
                fs::read(entry.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// Verifies `cert` against the CA in `ca` the way the gRPC server does (webpki, client auth).
fn chains_to(cert: &Path, ca: &Path) -> bool {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(ca).unwrap())
        .unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .unwrap();
    let leaf = CertificateDer::from_pem_file(cert).unwrap();
    verifier
        .verify_client_cert(&leaf, &[], UnixTime::now())
        .is_ok()
}

fn identity_of(cert: &Path) -> PeerIdentity {
    let leaf = CertificateDer::from_pem_file(cert).unwrap();
    PeerIdentity::from_certificate_der(leaf.as_ref()).unwrap()
}

fn assert_no_key_printed(dir: &Path, output: &std::process::Output) {
    let (stdout, stderr) = text(output);
    for (name, bytes) in snapshot(dir) {
        if name.ends_with("-key.pem") {
            let pem = String::from_utf8(bytes).unwrap();
            let body: String = pem
                .lines()
                .filter(|line| !line.starts_with("-----"))
                .collect();
            assert!(
                !stdout.contains(&body[..40]) && !stderr.contains(&body[..40]),
                "{name} printed"
            );
        }
    }
}

#[test]
fn init_creates_a_ca_and_a_control_certificate_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let pki_arg = pki.to_str().unwrap();
    let output = osbd(&["certs", "init", "--out", pki_arg], &[]);
    assert!(output.status.success(), "{:?}", text(&output));
    let (stdout, _) = text(&output);

    let ca = pki.join("ca.pem");
    let ca_key = pki.join("ca-key.pem");
    let cert = pki.join("control-main.pem");
    let key = pki.join("control-main-key.pem");
    for file in [&ca, &ca_key, &cert, &key] {
        assert!(file.is_file(), "{} exists", file.display());
    }
    assert_eq!(mode(&ca_key), 0o600);
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(&pki), 0o700);
    assert!(chains_to(&cert, &ca));
    assert_eq!(
        identity_of(&cert),
        PeerIdentity::new(PeerRole::Control, "main").unwrap()
    );
    assert!(
        stdout.contains(&format!("export OPENSANDBOX_GRPC_TLS_CA={}", ca.display())),
        "{stdout}"
    );
    assert!(stdout.contains(&format!(
        "export OPENSANDBOX_GRPC_TLS_KEY={}",
        key.display()
    )));
    assert_no_key_printed(&pki, &output);

    // Again without --force: refused, names the files, changes nothing.
    let before = snapshot(&pki);
    let again = osbd(&["certs", "init", "--out", pki_arg], &[]);
    assert_eq!(again.status.code(), Some(2), "{:?}", text(&again));
    let (_, stderr) = text(&again);
    assert!(
        stderr.contains("ca-key.pem") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(snapshot(&pki), before, "a refused init changes nothing");

    // With --force: a new CA replaces the old one.
    let forced = osbd(&["certs", "init", "--out", pki_arg, "--force"], &[]);
    assert!(forced.status.success(), "{:?}", text(&forced));
    assert_ne!(
        fs::read(&ca).unwrap(),
        before.iter().find(|(n, _)| n == "ca.pem").unwrap().1
    );
    assert_eq!(mode(&ca_key), 0o600);
    assert!(chains_to(&cert, &ca));
    assert_eq!(snapshot(&pki).len(), 4, "no temporary file left behind");
}

#[test]
fn issue_signs_worker_and_control_certificates_with_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let other = dir.path().join("other");
    let out = dir.path().join("worker-eu-1");
    let init = osbd(&["certs", "init", "--out", pki.to_str().unwrap()], &[]);
    assert!(init.status.success(), "{:?}", text(&init));
    let init = osbd(&["certs", "init", "--out", other.to_str().unwrap()], &[]);
    assert!(init.status.success());

    let issue = |role: &str, name: &str, force: bool| {
        let mut args = vec![
            "certs",
            "issue",
            "--ca-dir",
            pki.to_str().unwrap(),
            "--role",
            role,
            "--name",
            name,
            "--out",
            out.to_str().unwrap(),
            "--host",
            "worker-eu-1.internal",
            "--host",
            "10.0.0.7",
        ];
        if force {
            args.push("--force");
        }
        osbd(&args, &[])
    };

    let output = issue("worker", "eu-1", false);
    assert!(output.status.success(), "{:?}", text(&output));
    let cert = out.join("worker-eu-1.pem");
    let key = out.join("worker-eu-1-key.pem");
    assert_eq!(mode(&key), 0o600);
    assert!(chains_to(&cert, &pki.join("ca.pem")), "chains to its CA");
    assert!(
        !chains_to(&cert, &other.join("ca.pem")),
        "not to another CA"
    );
    assert_eq!(
        identity_of(&cert),
        PeerIdentity::new(PeerRole::Worker, "eu-1").unwrap()
    );
    assert_no_key_printed(&out, &output);

    // Re-issuing the same identity without --force is refused and changes nothing.
    let before = snapshot(&out);
    let again = issue("worker", "eu-1", false);
    assert_eq!(again.status.code(), Some(2), "{:?}", text(&again));
    assert_eq!(snapshot(&out), before);
    let forced = issue("worker", "eu-1", true);
    assert!(forced.status.success());
    assert_ne!(snapshot(&out), before);

    // A control-plane certificate next to it.
    let control = issue("control", "cp-2", false);
    assert!(control.status.success(), "{:?}", text(&control));
    assert_eq!(
        identity_of(&out.join("control-cp-2.pem")),
        PeerIdentity::new(PeerRole::Control, "cp-2").unwrap()
    );
}

#[test]
fn issue_refuses_bad_input_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let missing_ca = osbd(
        &[
            "certs",
            "issue",
            "--ca-dir",
            dir.path().join("nope").to_str().unwrap(),
            "--role",
            "worker",
            "--name",
            "w1",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!missing_ca.status.success());
    assert!(
        text(&missing_ca).1.contains("ca.pem"),
        "{:?}",
        text(&missing_ca)
    );
    assert!(!out.exists(), "nothing written");

    let pki = dir.path().join("pki");
    assert!(
        osbd(&["certs", "init", "--out", pki.to_str().unwrap()], &[])
            .status
            .success()
    );
    let bad_name = osbd(
        &[
            "certs",
            "issue",
            "--ca-dir",
            pki.to_str().unwrap(),
            "--role",
            "worker",
            "--name",
            "Bad Name",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(bad_name.status.code(), Some(2));
    assert!(text(&bad_name).1.contains("invalid identity name"));
    let bad_role = osbd(
        &[
            "certs",
            "issue",
            "--ca-dir",
            pki.to_str().unwrap(),
            "--role",
            "admin",
            "--name",
            "w1",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!bad_role.status.success());
    assert!(!out.exists(), "nothing written");
}

#[test]
fn dev_pki_is_generated_once_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let first = osb_grpc::pki::generate_dev_pki(dir.path()).unwrap();
    let before = snapshot(dir.path());
    let second = osb_grpc::pki::generate_dev_pki(dir.path()).unwrap();
    assert_eq!(first, second);
    assert_eq!(snapshot(dir.path()), before, "reused, not regenerated");
    assert_eq!(mode(&first.worker.key), 0o600);
    assert!(chains_to(&first.worker.cert, &first.ca_cert));
    assert!(chains_to(&first.control.cert, &first.ca_cert));

    // Half a PKI is refused rather than silently completed.
    fs::remove_file(&first.worker.key).unwrap();
    let error = osb_grpc::pki::generate_dev_pki(dir.path()).unwrap_err();
    assert!(
        error.to_string().contains("worker-local-key.pem"),
        "{error}"
    );
}
