//! The actix shell: messages change the data plane's sessions, events from the data plane are
//! forwarded to the worker's sink, and the observable state reflects both (without values).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use http::Request;
use osb_proto::SandboxId;
use osb_proxy::actor::{
    AddSecret, GetObservableState, InjectPanic, RegisterSession, RemoveSecret, UnregisterSession,
    UpdateSecret,
};
use osb_proxy::{
    AddressPolicy, ChannelSink, ProxyActor, ProxyActorError, ProxyConfig, ProxyEvent, SealingProxy,
    SecretSpec, SecretValue, SessionSpec,
};

use crate::support::client::{body, Client};
use crate::support::harness::{patterns, sandbox_ip, token, RecordingSink};
use crate::support::origin::start_origin;

#[actix::test]
async fn messages_steer_sessions_and_events_are_forwarded() {
    let origin = start_origin().await;
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = ProxyConfig::new(data_dir.path());
    config.explicit_listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.addresses = AddressPolicy {
        allow_loopback: true,
        allow_private: false,
    };
    config.use_system_roots = false;
    config.extra_upstream_ca_pems = vec![origin.ca_pem.clone().into_bytes()];
    config
        .resolve_overrides
        .insert("api.example.test".into(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    let (channel, receiver) = ChannelSink::new(64);
    let proxy = Arc::new(
        SealingProxy::start(config, Arc::new(channel))
            .await
            .unwrap(),
    );
    let forwarded = Arc::new(RecordingSink::default());
    let actor = {
        let proxy = Arc::clone(&proxy);
        let sink = forwarded.clone();
        actix::Supervisor::start(move |_| ProxyActor::new(proxy, receiver, sink))
    };

    let sandbox_id = SandboxId::new();
    let authority = format!("api.example.test:{}", origin.tls_addr.port());
    let spec = SessionSpec {
        sandbox_id,
        source_ip: sandbox_ip(5),
        egress_allowlist: patterns(std::slice::from_ref(&authority)),
        secrets: vec![SecretSpec {
            name: "KEY".into(),
            token: token(1),
            value: SecretValue::from("first-value"),
            allowed_hosts: vec![],
            version: 0,
        }],
    };
    actor.send(RegisterSession(spec)).await.unwrap().unwrap();
    let again = actor
        .send(UnregisterSession {
            sandbox_id: SandboxId::new(),
        })
        .await
        .unwrap();
    assert_eq!(
        again,
        Ok(false),
        "unknown sandboxes are reported as absent (a replayed undo is harmless)"
    );

    let mut client = Client::through(
        sandbox_ip(5),
        proxy.explicit_addr(),
        &authority,
        proxy.ca_cert_pem(),
        false,
    )
    .await;
    let request = |header: &str| {
        Request::get("/echo")
            .header("host", authority.as_str())
            .header("x-key", header)
            .body(body(""))
            .unwrap()
    };
    assert_eq!(client.send(request(token(1).as_str())).await.0, 200);
    assert_eq!(
        origin.last().header("x-key").as_deref(),
        Some("first-value")
    );

    actor
        .send(UpdateSecret {
            sandbox_id,
            name: "KEY".into(),
            version: 1,
            value: SecretValue::from("second-value"),
            allowed_hosts: None,
        })
        .await
        .unwrap()
        .unwrap();
    let added = SecretSpec {
        name: "EXTRA".into(),
        token: token(2),
        value: SecretValue::from("extra-value"),
        allowed_hosts: vec![],
        version: 0,
    };
    actor
        .send(AddSecret {
            sandbox_id,
            secret: added,
        })
        .await
        .unwrap()
        .unwrap();
    let both = format!("{} {}", token(1), token(2));
    assert_eq!(client.send(request(&both)).await.0, 200);
    assert_eq!(
        origin.last().header("x-key").as_deref(),
        Some("second-value extra-value")
    );

    actor
        .send(RemoveSecret {
            sandbox_id,
            name: "EXTRA".into(),
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(client.send(request(token(2).as_str())).await.0, 403);

    let state = actor.send(GetObservableState).await.unwrap();
    assert_eq!(state.sandbox_ids, vec![sandbox_id]);
    assert_eq!(state.requests, 3);
    assert_eq!(state.substitutions, 3);
    assert_eq!(state.ca_cert_path, proxy.ca_cert_path());

    actor
        .send(UnregisterSession { sandbox_id })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(client.send(request("none")).await.0, 407);
    let state = actor.send(GetObservableState).await.unwrap();
    assert!(state.sandbox_ids.is_empty());
    // Events reach the worker's sink through the actor: two uses and two blocks.
    let mut waited = 0;
    while forwarded.0.lock().unwrap().len() < 4 && waited < 200 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        waited += 1;
    }
    let events = forwarded.0.lock().unwrap().clone();
    let used = events
        .iter()
        .filter(|e| matches!(e, ProxyEvent::SecretUsed { .. }))
        .count();
    let blocked = events
        .iter()
        .filter(|e| matches!(e, ProxyEvent::EgressBlocked { .. }))
        .count();
    assert_eq!((used, blocked), (2, 2), "{events:?}");
}

/// A panic in the control actor mid-flow: the supervisor restarts it, the live session is kept
/// (the registry outlives the actor), the version rule still holds after the restart, and the
/// next update applies and reaches the wire.
#[actix::test]
async fn a_panicking_actor_restarts_and_keeps_sessions_and_versions() {
    let origin = start_origin().await;
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = ProxyConfig::new(data_dir.path());
    config.explicit_listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.addresses = AddressPolicy {
        allow_loopback: true,
        allow_private: false,
    };
    config.use_system_roots = false;
    config.extra_upstream_ca_pems = vec![origin.ca_pem.clone().into_bytes()];
    config
        .resolve_overrides
        .insert("api.example.test".into(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    let proxy = Arc::new(
        SealingProxy::start(config, Arc::new(osb_proxy::NullSink))
            .await
            .unwrap(),
    );
    let actor = {
        let proxy = Arc::clone(&proxy);
        actix::Supervisor::start(move |_| ProxyActor::control_only(proxy))
    };
    let sandbox_id = SandboxId::new();
    let authority = format!("api.example.test:{}", origin.tls_addr.port());
    let registered = actor
        .send(RegisterSession(SessionSpec {
            sandbox_id,
            source_ip: sandbox_ip(6),
            egress_allowlist: patterns(std::slice::from_ref(&authority)),
            secrets: vec![SecretSpec {
                name: "KEY".into(),
                token: token(3),
                value: SecretValue::from("value-v1"),
                allowed_hosts: vec![],
                version: 1,
            }],
        }))
        .await
        .unwrap();
    assert_eq!(registered, Ok(1));

    let crashed = actor.send(InjectPanic).await.unwrap();
    assert_eq!(
        crashed,
        Err(ProxyActorError::Fatal {
            command: "inject_panic"
        })
    );
    let update = |version: u64, value: &str| UpdateSecret {
        sandbox_id,
        name: "KEY".into(),
        version,
        value: SecretValue::from(value),
        allowed_hosts: None,
    };
    // The restarted actor still refuses to roll the value back, then applies a newer one.
    assert_eq!(actor.send(update(1, "stale")).await.unwrap(), Ok(false));
    assert_eq!(actor.send(update(2, "value-v2")).await.unwrap(), Ok(true));
    let state = actor.send(GetObservableState).await.unwrap();
    assert_eq!(state.restarts, 1);
    assert_eq!(state.sandbox_ids, vec![sandbox_id]);

    let mut client = Client::through(
        sandbox_ip(6),
        proxy.explicit_addr(),
        &authority,
        proxy.ca_cert_pem(),
        false,
    )
    .await;
    let request = Request::get("/echo")
        .header("host", authority.as_str())
        .header("x-key", token(3).as_str())
        .body(body(""))
        .unwrap();
    assert_eq!(client.send(request).await.0, 200);
    assert_eq!(origin.last().header("x-key").as_deref(), Some("value-v2"));
}
