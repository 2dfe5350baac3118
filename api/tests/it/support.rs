//! Small helpers the whole-platform tests share: a free loopback port, and a guard that reaps a
//! worker's host objects (namespaces, veths, nftables tables, mounts) when the test ends, even
//! when it fails.

use std::path::PathBuf;

/// A port nobody listens on right now.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// Reaps every `(prefix, sandboxes dir)` it holds when dropped.
pub(crate) struct Reap(pub Vec<(String, PathBuf)>);

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
