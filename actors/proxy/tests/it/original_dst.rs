//! `KernelOriginalDestination` against a real redirect: inside a network namespace this test
//! creates (and deletes, even on failure), an nftables `redirect` sends 127.0.0.77:443 to a local
//! listener, and `SO_ORIGINAL_DST` must report 127.0.0.77:443. Needs root, like the netns runtime.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::process::Command;

use osb_proxy::{KernelOriginalDestination, OriginalDestination};

struct Namespace(String);

impl Namespace {
    fn create() -> Self {
        let name = format!("osbproxy{}", std::process::id());
        run(&["ip", "netns", "add", &name]);
        Namespace(name)
    }

    fn exec(&self, command: &[&str]) {
        let mut full = vec!["ip", "netns", "exec", self.0.as_str()];
        full.extend_from_slice(command);
        run(&full);
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn run(command: &[&str]) {
    let status = Command::new(command[0])
        .args(&command[1..])
        .status()
        .unwrap();
    assert!(status.success(), "{command:?} failed");
}

#[test]
fn kernel_reports_the_redirected_destination() {
    let namespace = Namespace::create();
    namespace.exec(&["ip", "link", "set", "lo", "up"]);
    namespace.exec(&[
        "nft",
        "add table ip osb; add chain ip osb out { type nat hook output priority -100 ; }",
    ]);
    namespace.exec(&[
        "nft",
        "add rule ip osb out ip daddr 127.0.0.77 tcp dport 443 redirect to :18777",
    ]);
    let path = format!("/var/run/netns/{}", namespace.0);
    // A fresh thread enters the namespace, so the test's other threads stay where they are.
    let observed = std::thread::spawn(move || {
        let handle = std::fs::File::open(&path).unwrap();
        nix::sched::setns(handle.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let listener = TcpListener::bind("127.0.0.1:18777").unwrap();
        let _client = TcpStream::connect("127.0.0.77:443").unwrap();
        let (accepted, _) = listener.accept().unwrap();
        accepted.set_nonblocking(true).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let stream = tokio::net::TcpStream::from_std(accepted).unwrap();
            KernelOriginalDestination
                .original_destination(&stream)
                .unwrap()
        })
    })
    .join()
    .unwrap();
    assert_eq!(observed, "127.0.0.77:443".parse::<SocketAddr>().unwrap());
}
