//! Egress is fail-closed: tcp/80 and tcp/443 reach only the proxy's transparent listener (which
//! sees the sandbox's own address and, through SO_ORIGINAL_DST, the original destination), the
//! explicit proxy port is reachable on the gateway, DNS answers only allowlisted names, and
//! every bypass — other ports, UDP, other DNS servers, host services — fails. Only addresses of
//! the test's own pool, namespaces and veths are used.

use std::time::Duration;

use osb_vm::{ProxyEndpoints, Runtime, SandboxEventKind};

use crate::support::{
    connect_stand_in, free_port, spec, transparent_stand_in, unused_proxy, TestPki, TestWorker,
    TlsStandIn,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_ports_are_redirected_to_the_transparent_listener() {
    web_ports_are_redirected_to_the_transparent_listener_on(TestWorker::start(10).await).await;
}

/// The same on sandboxes claimed from a warm pool (ADR 0208).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_ports_are_redirected_to_the_transparent_listener_claimed() {
    web_ports_are_redirected_to_the_transparent_listener_on(TestWorker::start_pooled(110, 4).await)
        .await;
}

async fn web_ports_are_redirected_to_the_transparent_listener_on(worker: TestWorker) {
    let pki = TestPki::new("unused.test");
    let transparent = tokio::net::TcpListener::bind("0.0.0.0:0")
        .await
        .expect("bind");
    let explicit = tokio::net::TcpListener::bind("0.0.0.0:0")
        .await
        .expect("bind");
    let proxy = ProxyEndpoints {
        transparent_port: transparent.local_addr().expect("addr").port(),
        explicit_port: explicit.local_addr().expect("addr").port(),
    };
    let mut transparent_seen = transparent_stand_in(transparent).await;
    let mut explicit_seen = transparent_stand_in(explicit).await;
    let mut sandbox_spec = spec(proxy, &pki.ca_pem);
    sandbox_spec.egress_allowlist = vec!["api.allowed.test".into()];
    let id = worker.create(sandbox_spec).await;
    let info = worker.runtime.info(id).await.expect("info");

    // By name: the resolver answers the pool's redirect address; port 443 lands at the stand-in.
    let script = r#"
import socket, sys
for host, port in [("api.allowed.test", 443), (sys.argv[1], 80)]:
    s = socket.create_connection((host, port), timeout=5)
    print(s.recv(100).decode().strip())
    s.close()
"#;
    let out = worker.py(id, script, &[info.gateway.to_string()]).await;
    assert_eq!(out.exit_code, 0, "{out:?}");
    assert_eq!(
        out.stdout.matches("hello from stand-in").count(),
        2,
        "{out:?}"
    );

    let first = transparent_seen.recv().await.expect("first connection");
    assert_eq!(first.peer.ip(), std::net::IpAddr::V4(info.address));
    assert_eq!(
        first.original_destination,
        (worker.dns_answer(), 443).into()
    );
    let second = transparent_seen.recv().await.expect("second connection");
    assert_eq!(second.original_destination, (info.gateway, 80).into());

    // The explicit proxy listener is reachable at the address HTTPS_PROXY names.
    let via_proxy = worker
        .sh(id, r#"python3 -c "import os, urllib.parse, socket; u = urllib.parse.urlparse(os.environ['HTTPS_PROXY']); print(socket.create_connection((u.hostname, u.port), timeout=5).recv(100).decode().strip())""#)
        .await;
    assert_eq!(
        via_proxy.stdout.trim(),
        "hello from stand-in",
        "{via_proxy:?}"
    );
    let seen = explicit_seen.recv().await.expect("explicit connection");
    assert_eq!(seen.peer.ip(), std::net::IpAddr::V4(info.address));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bypass_attempts_fail() {
    bypass_attempts_fail_on(TestWorker::start(11).await).await;
}

/// The same on sandboxes claimed from a warm pool (ADR 0208).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bypass_attempts_fail_claimed() {
    bypass_attempts_fail_on(TestWorker::start_pooled(111, 4).await).await;
}

async fn bypass_attempts_fail_on(worker: TestWorker) {
    let pki = TestPki::new("unused.test");
    let mut sandbox_spec = spec(unused_proxy(), &pki.ca_pem);
    sandbox_spec.egress_allowlist = vec!["api.allowed.test".into()];
    let id = worker.create(sandbox_spec).await;
    let info = worker.runtime.info(id).await.expect("info");
    // A neighbour sandbox with a service listening on its own address.
    let neighbour = worker.create(spec(unused_proxy(), &pki.ca_pem)).await;
    let neighbour_address = worker.runtime.info(neighbour).await.expect("info").address;
    let listen = worker
        .sh(neighbour, "nohup python3 -c 'import socket,time; s=socket.socket(); s.bind((\"0.0.0.0\", 7000)); s.listen(); time.sleep(600)' >/dev/null 2>&1 & for i in $(seq 50); do python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", 7000), timeout=1)' 2>/dev/null && echo listening && break; done")
        .await;
    assert_eq!(listen.stdout.trim(), "listening", "{listen:?}");

    // Host services listening on all addresses: a TCP port and a UDP port (and a fake DNS server).
    let host_tcp = tokio::net::TcpListener::bind("0.0.0.0:0")
        .await
        .expect("bind");
    let tcp_port = host_tcp.local_addr().expect("addr").port();
    let host_udp = tokio::net::UdpSocket::bind("0.0.0.0:0")
        .await
        .expect("bind");
    let udp_port = host_udp.local_addr().expect("addr").port();
    // The host itself can reach them (so the sandbox's failure below is the firewall's doing).
    tokio::net::TcpStream::connect((info.gateway, tcp_port))
        .await
        .expect("host reaches its own listener");

    let script = format!(
        r#"
import socket
def tcp(host, port):
    try:
        socket.create_connection((host, port), timeout=1).close(); return "open"
    except OSError as e:
        return "blocked"
def udp(host, port, payload=b"x", wait=1):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(wait)
    try:
        s.sendto(payload, (host, port)); s.recvfrom(512); return "answered"
    except OSError:
        return "blocked"
query = bytes.fromhex("abcd01000001000000000000") + b"\x03api\x07allowed\x04test\x00\x00\x01\x00\x01"
print("tcp-host-port", tcp("{gw}", {tcp_port}))
print("tcp-ssh", tcp("{gw}", 22))
print("tcp-neighbour", tcp("{neighbour}", 7000))
print("udp-host-port", udp("{gw}", {udp_port}))
print("quic-443", udp("{gw}", 443))
print("dns-other-server", udp("{answer}", 53, query))
print("dns-other-port", udp("{gw}", {udp_port}, query))
print("dns-worker", udp("{gw}", 53, query, wait=10))
"#,
        gw = info.gateway,
        answer = worker.dns_answer(),
        neighbour = neighbour_address,
    );
    let out = worker.py(id, &script, &[]).await;
    assert_eq!(out.exit_code, 0, "{out:?}");
    for line in [
        "tcp-host-port blocked",
        "tcp-ssh blocked",
        "tcp-neighbour blocked",
        "udp-host-port blocked",
        "quic-443 blocked",
        "dns-other-server blocked",
        "dns-other-port blocked",
    ] {
        assert!(out.stdout.contains(line), "expected {line:?} in {out:?}");
    }
    // The control: DNS to the worker resolver works, so the blocks above are not a broken link.
    assert!(out.stdout.contains("dns-worker answered"), "{out:?}");
    // Nothing reached the host's UDP socket (the sandbox finished sending before we look).
    let mut buffer = [0u8; 64];
    assert!(
        host_udp.try_recv_from(&mut buffer).is_err(),
        "a UDP datagram from the sandbox reached the host"
    );

    // IPv6 has nowhere to go.
    let v6 = worker.sh(id, "python3 -c 'import socket; socket.create_connection((\"::1\", 9), timeout=1)' 2>&1; ip -6 route 2>&1 | grep -c default").await;
    assert!(v6.stdout.trim().ends_with('0'), "{v6:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolver_answers_only_allowlisted_names_and_reports_the_rest() {
    resolver_answers_only_allowlisted_names_and_reports_the_rest_on(TestWorker::start(12).await)
        .await;
}

/// The same on sandboxes claimed from a warm pool (ADR 0208).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolver_answers_only_allowlisted_names_and_reports_the_rest_claimed() {
    resolver_answers_only_allowlisted_names_and_reports_the_rest_on(
        TestWorker::start_pooled(112, 4).await,
    )
    .await;
}

async fn resolver_answers_only_allowlisted_names_and_reports_the_rest_on(worker: TestWorker) {
    let pki = TestPki::new("unused.test");
    let mut sandbox_spec = spec(unused_proxy(), &pki.ca_pem);
    sandbox_spec.egress_allowlist = vec!["api.allowed.test".into(), "*.pypi.test:443".into()];
    let id = worker.create(sandbox_spec).await;
    let mut events = worker.sink.subscribe();

    let out = worker
        .sh(id, r#"for h in api.allowed.test files.pypi.test evil.example pypi.test; do python3 -c "import socket,sys; print(sys.argv[1], socket.gethostbyname(sys.argv[1]))" $h 2>/dev/null || echo "$h nxdomain"; done"#)
        .await;
    let answer = worker.dns_answer().to_string();
    assert!(
        out.stdout.contains(&format!("api.allowed.test {answer}")),
        "{out:?}"
    );
    assert!(
        out.stdout.contains(&format!("files.pypi.test {answer}")),
        "{out:?}"
    );
    assert!(out.stdout.contains("evil.example nxdomain"), "{out:?}");
    assert!(out.stdout.contains("pypi.test nxdomain"), "{out:?}");

    let blocked = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let event = events.recv().await.expect("event stream");
            if let SandboxEventKind::EgressBlocked { host, via } = &event.kind {
                if host == "evil.example" {
                    return (event.sandbox_id, via.clone());
                }
            }
        }
    })
    .await
    .expect("an egress_blocked event for evil.example");
    assert_eq!(blocked, (id, "dns".to_owned()));

    // Names are the sandbox's choice: a token in a name never reaches an event, and control
    // characters (forged log lines, terminal escapes) arrive escaped.
    let raw_queries = r#"python3 - <<'PY'
import socket, struct
ns = [l.split()[1] for l in open('/etc/resolv.conf') if l.startswith('nameserver')][0]
def ask(labels):
    packet = struct.pack('>HHHHHH', 0x1234, 0x0100, 1, 0, 0, 0)
    for label in labels:
        packet += bytes([len(label)]) + label
    packet += b'\x00' + struct.pack('>HH', 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
    s.sendto(packet, (ns, 53)); print(s.recv(512)[3] & 15)
ask([b'osb_sealed_0123456789abcdef0123456789abcdef', b'leak', b'example'])
ask([b'evil\r\nforged', b'example'])
PY"#;
    let out = worker.sh(id, raw_queries).await;
    assert_eq!(out.stdout.trim(), "3\n3", "both answered NXDOMAIN: {out:?}");
    let hosts = tokio::time::timeout(Duration::from_secs(10), async {
        let mut hosts = Vec::new();
        while hosts.len() < 2 {
            let event = events.recv().await.expect("event stream");
            if let SandboxEventKind::EgressBlocked { host, .. } = &event.kind {
                if host.contains("leak.example") || host.contains("forged") {
                    hosts.push(host.clone());
                }
            }
        }
        hosts
    })
    .await
    .expect("egress_blocked events for both raw names");
    assert_eq!(
        hosts,
        vec![
            "[sealed].leak.example".to_owned(),
            "evil\\x0d\\x0aforged.example".to_owned()
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_python_and_node_trust_the_installed_proxy_ca_without_flags() {
    curl_python_and_node_trust_the_installed_proxy_ca_without_flags_on(TestWorker::start(13).await)
        .await;
}

/// The same on sandboxes claimed from a warm pool (ADR 0208).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_python_and_node_trust_the_installed_proxy_ca_without_flags_claimed() {
    curl_python_and_node_trust_the_installed_proxy_ca_without_flags_on(
        TestWorker::start_pooled(113, 4).await,
    )
    .await;
}

async fn curl_python_and_node_trust_the_installed_proxy_ca_without_flags_on(worker: TestWorker) {
    let pki = TestPki::new("secure.test");
    let transparent_port = free_port();
    let _tls = TlsStandIn::start(transparent_port, &pki.leaf_cert(), &pki.leaf_key()).await;
    let explicit = tokio::net::TcpListener::bind("0.0.0.0:0")
        .await
        .expect("bind");
    let proxy = ProxyEndpoints {
        transparent_port,
        explicit_port: explicit.local_addr().expect("addr").port(),
    };
    let mut connects = connect_stand_in(explicit, transparent_port).await;
    let mut sandbox_spec = spec(proxy, &pki.ca_pem);
    sandbox_spec.egress_allowlist = vec!["secure.test".into()];
    let id = worker.create(sandbox_spec).await;

    // Go straight to port 443 (transparent path); the explicit proxy is tested elsewhere.
    let no_proxy = [
        ("HTTPS_PROXY", ""),
        ("https_proxy", ""),
        ("HTTP_PROXY", ""),
        ("http_proxy", ""),
    ];
    let curl = worker
        .sh_env(
            id,
            "curl -sS -o /dev/null -w '%{http_code}' https://secure.test/",
            &no_proxy,
        )
        .await;
    assert_eq!(curl.stdout.trim(), "200", "{curl:?}");
    let python = worker
        .sh_env(id, "python3 -c 'import urllib.request; print(urllib.request.urlopen(\"https://secure.test/\", timeout=10).status)'", &no_proxy)
        .await;
    assert_eq!(python.stdout.trim(), "200", "{python:?}");
    let node = worker
        .sh_env(id, "node -e 'require(\"https\").get(\"https://secure.test/\", r => { console.log(r.statusCode); r.resume(); }).on(\"error\", e => { console.log(e.message); })'", &no_proxy)
        .await;
    assert_eq!(node.stdout.trim(), "200", "{node:?}");
    // The system trust store alone (no CA variables) trusts it too.
    let system_store = worker
        .sh_env(id, "env -u SSL_CERT_FILE -u CURL_CA_BUNDLE curl -sS -o /dev/null -w '%{http_code}' https://secure.test/", &no_proxy)
        .await;
    assert_eq!(system_store.stdout.trim(), "200", "{system_store:?}");

    // With the environment as composed (HTTPS_PROXY set), curl and Python go through the
    // explicit proxy with CONNECT and still trust the proxy CA, no flags at all.
    let info = worker.runtime.info(id).await.expect("info");
    let curl = worker
        .sh(
            id,
            "curl -sS -o /dev/null -w '%{http_code}' https://secure.test/",
        )
        .await;
    assert_eq!(curl.stdout.trim(), "200", "{curl:?}");
    let (peer, target) = connects.recv().await.expect("a CONNECT");
    assert_eq!(peer.ip(), std::net::IpAddr::V4(info.address));
    assert_eq!(target, "secure.test:443");
    let python = worker
        .sh(id, "python3 -c 'import urllib.request; print(urllib.request.urlopen(\"https://secure.test/\", timeout=10).status)'")
        .await;
    assert_eq!(python.stdout.trim(), "200", "{python:?}");
}
