//! Criterion benchmarks of sealing and opening a secret (the cost a sandbox create pays per
//! secret), with the ratio against a bare AES-256-GCM call as the baseline.

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
    }
    group.finish();
}

criterion_group!(benches, bench_seal_open);
criterion_main!(benches);
