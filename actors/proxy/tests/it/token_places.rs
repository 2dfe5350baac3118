//! A token is never forwarded as it is (DESIGN §6 rule 1), wherever a client puts it: in the
//! method, in a header *name* or in the host name, a whole token — this sandbox's or a foreign
//! one — is refused with a reason on both front ends, and nothing reaches the origin. (The
//! method case was found by the `express_request` fuzz target.)

use http::{HeaderName, Method, Request};

use crate::support::client::{body, connect_tunnel, Client};
use crate::support::harness::{sandbox_ip, token, Harness, Options};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_in_the_method_or_a_header_name_is_refused_on_both_front_ends() {
    for express in [true, false] {
        for http2 in [false, true] {
            let h = Harness::start_with(Options {
                express,
                ..Options::default()
            })
            .await;
            h.sandbox(
                2,
                &[h.at("api.example.test")],
                &[("KEY", 1, "token-places-value", &[])],
            );
            let mut client = h.client(2, "api.example.test", http2).await;
            let uri = if http2 {
                h.url("api.example.test", "/echo")
            } else {
                "/echo".to_owned()
            };
            for carried in [token(1), token(9)] {
                let method = Method::from_bytes(format!("G{carried}ET").as_bytes()).unwrap();
                let in_method = Request::builder()
                    .method(method)
                    .uri(uri.as_str())
                    .header("host", h.at("api.example.test"))
                    .body(body(""))
                    .unwrap();
                let (status, _, answer) = client.send(in_method).await;
                let case = format!("express={express} http2={http2} method");
                assert_eq!(status, 400, "{case}: {}", String::from_utf8_lossy(&answer));
                assert!(
                    String::from_utf8_lossy(&answer).contains("method"),
                    "{case}"
                );

                let name = HeaderName::from_bytes(format!("x-{carried}").as_bytes()).unwrap();
                let in_name = Request::get(uri.as_str())
                    .header("host", h.at("api.example.test"))
                    .header(name, "1")
                    .body(body(""))
                    .unwrap();
                let (status, _, answer) = client.send(in_name).await;
                let case = format!("express={express} http2={http2} header name");
                assert_eq!(status, 400, "{case}: {}", String::from_utf8_lossy(&answer));
            }
            assert_eq!(h.origin.count(), 0, "nothing reached the origin");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_in_the_host_name_is_refused() {
    let h = Harness::start().await;
    h.sandbox(2, &[format!("*.example.test:{}", h.port())], &[]);
    let host = format!("{}.example.test:{}", token(9), h.port());
    let (status, text) = connect_tunnel(sandbox_ip(2), h.proxy.explicit_addr(), &host)
        .await
        .unwrap_err();
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("host name"), "{text}");
    // The same host through a working tunnel to an allowed name: the Host header must name the
    // tunnel's host, so fronting to it is refused too.
    let _ = Client::through(
        sandbox_ip(2),
        h.proxy.explicit_addr(),
        &h.at("a.example.test"),
        h.proxy.ca_cert_pem(),
        false,
    )
    .await;
    assert_eq!(h.origin.count(), 0);
}
