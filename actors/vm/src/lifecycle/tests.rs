//! Unit and property tests of the lifecycle core: the transition table, refusals that change
//! nothing, and random command sequences that never reach an illegal state.

use proptest::prelude::*;

use super::*;

fn run(
    state: &mut Lifecycle,
    command: VmCommand,
    outcome: Outcome,
) -> Result<Admission, LifecycleError> {
    let admission = state.admit(command)?;
    if admission == Admission::Proceed {
        state.complete(command, outcome);
    }
    Ok(admission)
}

#[test]
fn a_sandbox_lives_creating_running_checkpointing_stopped_destroyed() {
    let mut state = Lifecycle::Creating;
    assert_eq!(
        run(&mut state, VmCommand::Boot, Outcome::Succeeded),
        Ok(Admission::Proceed)
    );
    assert_eq!(state, Lifecycle::Running);
    assert_eq!(state.admit(VmCommand::Checkpoint), Ok(Admission::Proceed));
    assert_eq!(
        state,
        Lifecycle::Checkpointing {
            resume: Resting::Running
        }
    );
    state.complete(VmCommand::Checkpoint, Outcome::Succeeded);
    assert_eq!(state, Lifecycle::Running);
    run(&mut state, VmCommand::Stop, Outcome::Succeeded).unwrap();
    assert_eq!(state, Lifecycle::Stopped);
    run(&mut state, VmCommand::Destroy, Outcome::Succeeded).unwrap();
    assert_eq!(state, Lifecycle::Destroyed);
    assert_eq!(state.admit(VmCommand::Destroy), Ok(Admission::AlreadyDone));
}

#[test]
fn illegal_commands_are_refused_and_change_nothing() {
    let mut creating = Lifecycle::Creating;
    let refused = creating.admit(VmCommand::Exec).unwrap_err();
    assert_eq!(refused.state, "creating");
    assert_eq!(creating, Lifecycle::Creating);

    let mut checkpointing = Lifecycle::Checkpointing {
        resume: Resting::Running,
    };
    for command in [
        VmCommand::Exec,
        VmCommand::Destroy,
        VmCommand::Restore,
        VmCommand::Boot,
    ] {
        assert!(checkpointing.admit(command).is_err(), "{command:?}");
    }
    assert!(checkpointing.is_transitional());

    let mut stopped = Lifecycle::Stopped;
    let refused = stopped.admit(VmCommand::Exec).unwrap_err();
    assert!(
        refused.to_string().contains("start or restore"),
        "{refused}"
    );

    let mut destroyed = Lifecycle::Destroyed;
    assert!(destroyed.admit(VmCommand::Boot).is_err());
    assert_eq!(destroyed, Lifecycle::Destroyed);
}

#[test]
fn replays_are_answered_without_the_runtime() {
    let mut running = Lifecycle::Running;
    assert_eq!(running.admit(VmCommand::Boot), Ok(Admission::AlreadyDone));
    assert_eq!(running.admit(VmCommand::Start), Ok(Admission::AlreadyDone));
    let mut stopped = Lifecycle::Stopped;
    assert_eq!(stopped.admit(VmCommand::Stop), Ok(Admission::AlreadyDone));
}

#[test]
fn a_failed_command_leaves_the_resting_state() {
    let mut state = Lifecycle::Creating;
    run(&mut state, VmCommand::Boot, Outcome::Failed).unwrap();
    assert_eq!(state, Lifecycle::Creating, "a failed boot may be retried");
    let mut state = Lifecycle::Stopped;
    state.admit(VmCommand::Checkpoint).unwrap();
    state.complete(VmCommand::Checkpoint, Outcome::Failed);
    assert_eq!(state, Lifecycle::Stopped);
    run(&mut state, VmCommand::Destroy, Outcome::Failed).unwrap();
    assert_eq!(state, Lifecycle::Stopped);
}

#[test]
fn resync_follows_the_runtime_and_never_revives_a_destroyed_sandbox() {
    let interrupted = Lifecycle::Checkpointing {
        resume: Resting::Running,
    };
    assert_eq!(
        Lifecycle::resync(interrupted, Some(SandboxState::Running)),
        Lifecycle::Running
    );
    assert_eq!(Lifecycle::resync(interrupted, None), Lifecycle::Destroyed);
    assert_eq!(
        Lifecycle::resync(Lifecycle::Creating, None),
        Lifecycle::Creating
    );
    assert_eq!(
        Lifecycle::resync(Lifecycle::Destroyed, Some(SandboxState::Running)),
        Lifecycle::Destroyed
    );
}

/// The table, written independently of `admit`/`complete`: which resting state may follow which.
fn legal_edge(from: Lifecycle, to: Lifecycle) -> bool {
    use Lifecycle::{Creating, Destroyed, Running, Stopped};
    from == to
        || matches!(
            (from, to),
            (Creating, Running)
                | (Creating, Destroyed)
                | (Running, Stopped)
                | (Running, Destroyed)
                | (Stopped, Running)
                | (Stopped, Destroyed)
        )
}

#[derive(Debug, Clone)]
enum Step {
    Command(VmCommand, Outcome),
    /// A panic mid-command: the actor restarts and resyncs from what the runtime reports.
    CrashDuring(VmCommand, Option<SandboxState>),
}

fn command() -> impl Strategy<Value = VmCommand> {
    prop_oneof![
        Just(VmCommand::Boot),
        Just(VmCommand::Exec),
        Just(VmCommand::Checkpoint),
        Just(VmCommand::Stop),
        Just(VmCommand::Start),
        Just(VmCommand::Restore),
        Just(VmCommand::SetAllowlist),
        Just(VmCommand::Destroy),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let outcome = prop_oneof![Just(Outcome::Succeeded), Just(Outcome::Failed)];
    let observed = prop_oneof![
        Just(None),
        Just(Some(SandboxState::Running)),
        Just(Some(SandboxState::Stopped)),
    ];
    prop_oneof![
        4 => (command(), outcome).prop_map(|(c, o)| Step::Command(c, o)),
        1 => (command(), observed).prop_map(|(c, s)| Step::CrashDuring(c, s)),
    ]
}

proptest! {
    #[test]
    fn random_command_sequences_never_reach_an_illegal_state(steps in proptest::collection::vec(step(), 1..60)) {
        let mut state = Lifecycle::Creating;
        for step in steps {
            let before = state;
            match step {
                Step::Command(command, outcome) => match state.admit(command) {
                    Err(_) => prop_assert_eq!(state, before, "a refusal changes nothing"),
                    Ok(Admission::AlreadyDone) => prop_assert_eq!(state, before),
                    Ok(Admission::Proceed) => {
                        if command == VmCommand::Exec {
                            prop_assert_eq!(before, Lifecycle::Running, "exec only while running");
                        }
                        state.complete(command, outcome);
                    }
                },
                Step::CrashDuring(command, observed) => {
                    let mut during = state;
                    let _ = during.admit(command);
                    state = Lifecycle::resync(during, observed);
                    if before == Lifecycle::Destroyed {
                        prop_assert_eq!(state, Lifecycle::Destroyed, "destroyed is final");
                    }
                    continue;
                }
            }
            prop_assert!(!state.is_transitional(), "{:?} left transitional after {:?}", state, before);
            prop_assert!(legal_edge(before, state), "illegal {:?} -> {:?}", before, state);
            if before == Lifecycle::Destroyed {
                prop_assert_eq!(state, Lifecycle::Destroyed);
            }
        }
    }
}
