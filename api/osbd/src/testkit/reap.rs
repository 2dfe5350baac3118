//! `Reap`: a guard that removes a worker's host objects (namespaces, veths, nftables tables,
//! mounts) when a test or bench ends, even when it fails. It never touches a prefix it was not
//! given.

use std::path::PathBuf;

/// Reaps every `(prefix, sandboxes dir)` it holds when dropped.
#[derive(Debug)]
pub struct Reap(pub Vec<(String, PathBuf)>);

impl Drop for Reap {
    fn drop(&mut self) {
        let all = std::mem::take(&mut self.0);
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|runtime| {
                    runtime.block_on(async {
                        for (prefix, dir) in &all {
                            let _ = osb_vm::netns::reap_worker(prefix, dir).await;
                        }
                    })
                })
        })
        .join();
    }
}
