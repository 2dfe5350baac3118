//! Message headers and the idempotency-key shape. `Nats-Msg-Id` carries the idempotency key so
//! JetStream's duplicate window drops replays; consumers still dedupe through the store.

use osb_proto::SagaId;

/// JetStream de-duplication header; its value is the idempotency key.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";
/// The saga a message belongs to.
pub const SAGA_ID_HEADER: &str = "osb-saga-id";
/// Correlates every message caused by one API request.
pub const CORRELATION_ID_HEADER: &str = "osb-correlation-id";

/// Whether a saga step is being done or undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SagaAction {
    Do,
    Undo,
}

/// `"{saga_id}:{step}:{do|undo}"`: the key every saga step is idempotent under.
pub fn idempotency_key(saga: SagaId, step: &str, action: SagaAction) -> String {
    let action = match action {
        SagaAction::Do => "do",
        SagaAction::Undo => "undo",
    };
    format!("{saga}:{step}:{action}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_shape() {
        let saga = SagaId::new();
        assert_eq!(
            idempotency_key(saga, "boot_sandbox", SagaAction::Undo),
            format!("{saga}:boot_sandbox:undo")
        );
    }
}
