//! Criterion benchmarks of sealing and opening a secret (the cost a sandbox create pays per
//! secret), next to a bare AES-256-GCM call on the same bytes as the baseline.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use osb_proto::{OrgId, ProjectId};
use osb_vault::{open, seal, Keyring, KeyringConfig, MasterKey, SecretAad, SecretValue};

fn keyring() -> Keyring {
    let config = KeyringConfig {
        primary: MasterKey::generate(),
        retired: Vec::new(),
    };
    match Keyring::plan(config, &[]) {
        Ok(plan) => plan.keyring,
        Err(error) => panic!("keyring: {error}"),
    }
}

fn bench_seal_open(c: &mut Criterion) {
    let keyring = keyring();
    let aad = SecretAad {
        secret_id: osb_proto::SecretId::new(),
        row_binding: osb_vault::CURRENT_ROW_BINDING,
        org_id: OrgId::new(),
        project_id: ProjectId::new(),
        name: "ANTHROPIC_API_KEY".to_owned(),
        secret_version: 1,
    };
    let mut group = c.benchmark_group("vault");
    for size in [64usize, 4096] {
        let value = SecretValue::new(vec![b'k'; size]);
        let sealed = match seal(&keyring, &aad, &value) {
            Ok(sealed) => sealed,
            Err(error) => panic!("seal: {error}"),
        };
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("seal", size), &value, |b, value| {
            b.iter(|| seal(&keyring, &aad, value))
        });
        group.bench_with_input(BenchmarkId::new("open", size), &sealed, |b, sealed| {
            b.iter(|| open(&keyring, &aad, sealed))
        });
        // Baseline: the bare AEAD call on the same bytes (fixed nonce, no header, no row
        // binding, no OS randomness), so the report can state the vault's overhead as a ratio.
        let cipher = Aes256Gcm::new(&[7u8; 32].into());
        let nonce = [9u8; 12];
        group.bench_with_input(
            BenchmarkId::new("baseline_aes_gcm_encrypt", size),
            &value,
            |b, value| b.iter(|| cipher.encrypt(Nonce::from_slice(&nonce), value.expose_bytes())),
        );
    }
    group.finish();
}

criterion_group!(benches, bench_seal_open);
criterion_main!(benches);
