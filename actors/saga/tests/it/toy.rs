//! A toy create-like saga: reserve_slot → create_volume (uses the slot) → start_vm → mark_running
//! (irreversible, no undo). Every action and undo is idempotent, like real steps must be. A
//! variant puts check_quota (a check with no undo) after reserve_slot.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use osb_saga::{SagaDefinition, SagaStep, StepError, StepInputs, StepName, StepUndo};
use serde_json::{json, Value};

/// What the saga acts on.
#[derive(Debug, Default)]
pub struct World {
    pub resources: Mutex<BTreeSet<String>>,
    pub running: Mutex<bool>,
    pub runs: AtomicU32,
    /// Undos of this step fail this many times before succeeding.
    pub failing_undo: Mutex<Option<(&'static str, u32)>>,
    /// The next run of this step takes this long before it acts (once: later runs are quick).
    pub slow_once: Mutex<Option<(&'static str, Duration)>>,
}

impl World {
    pub fn resources(&self) -> Vec<String> {
        self.resources.lock().unwrap().iter().cloned().collect()
    }

    pub fn clean(&self) -> Result<(), String> {
        let left = self.resources();
        let running = *self.running.lock().unwrap();
        if left.is_empty() && !running {
            Ok(())
        } else {
            Err(format!("resources {left:?}, running {running}"))
        }
    }

    fn delay_for(&self, step: &'static str) -> Option<Duration> {
        let mut guard = self.slow_once.lock().unwrap();
        match *guard {
            Some((name, delay)) if name == step => {
                *guard = None;
                Some(delay)
            }
            _ => None,
        }
    }

    fn undo_should_fail(&self, step: &'static str) -> bool {
        let mut guard = self.failing_undo.lock().unwrap();
        match guard.as_mut() {
            Some((name, remaining)) if *name == step && *remaining > 0 => {
                *remaining -= 1;
                true
            }
            _ => false,
        }
    }
}

pub const RESERVE_SLOT: StepName<Value> = StepName::new("reserve_slot");
pub const CREATE_VOLUME: StepName<Value> = StepName::new("create_volume");
pub const START_VM: StepName<Value> = StepName::new("start_vm");
pub const CHECK_QUOTA: StepName<Value> = StepName::new("check_quota");
pub const MARK_RUNNING: StepName<Value> = StepName::new("mark_running");

struct Resource {
    name: StepName<Value>,
    depends_on: Option<StepName<Value>>,
}

#[async_trait]
impl SagaStep<World> for Resource {
    fn name(&self) -> &'static str {
        self.name.as_str()
    }

    async fn run(&self, world: &World, inputs: &StepInputs) -> Result<Value, StepError> {
        if let Some(delay) = world.delay_for(self.name.as_str()) {
            tokio::time::sleep(delay).await;
        }
        let params: Value = inputs.params()?;
        let id = params["id"].as_str().unwrap_or("x").to_owned();
        let parent = match self.depends_on {
            Some(step) => {
                let output: Value = inputs.output(step)?;
                output["resource"].as_str().unwrap_or_default().to_owned()
            }
            None => String::new(),
        };
        let resource = format!(
            "{}:{id}{}",
            self.name,
            if parent.is_empty() {
                String::new()
            } else {
                format!("<{parent}")
            }
        );
        world.runs.fetch_add(1, Ordering::SeqCst);
        world.resources.lock().unwrap().insert(resource.clone());
        Ok(json!({ "resource": resource }))
    }

    fn undo(&self) -> Option<&dyn StepUndo<World>> {
        Some(self)
    }
}

#[async_trait]
impl StepUndo<World> for Resource {
    async fn undo(&self, world: &World, inputs: &StepInputs) -> Result<(), StepError> {
        if world.undo_should_fail(self.name.as_str()) {
            return Err(StepError::new(format!("{} is busy", self.name)));
        }
        // The action may have run without its output being logged (crash or injected failure
        // after the work): remove by prefix, which also covers that case.
        let prefix = format!("{}:", self.name);
        let _: Option<Value> = inputs.output_if_any(self.name);
        world
            .resources
            .lock()
            .unwrap()
            .retain(|resource| !resource.starts_with(&prefix));
        Ok(())
    }
}

/// A check that changes nothing outside the saga log: it has no undo.
struct CheckQuota;

#[async_trait]
impl SagaStep<World> for CheckQuota {
    fn name(&self) -> &'static str {
        CHECK_QUOTA.as_str()
    }

    async fn run(&self, _world: &World, inputs: &StepInputs) -> Result<Value, StepError> {
        let slot = inputs.output(RESERVE_SLOT)?;
        Ok(json!({ "slot": slot["resource"] }))
    }

    fn undo(&self) -> Option<&dyn StepUndo<World>> {
        None
    }
}

struct MarkRunning;

#[async_trait]
impl SagaStep<World> for MarkRunning {
    fn name(&self) -> &'static str {
        MARK_RUNNING.as_str()
    }

    async fn run(&self, world: &World, _inputs: &StepInputs) -> Result<Value, StepError> {
        *world.running.lock().unwrap() = true;
        Ok(json!({}))
    }

    fn undo(&self) -> Option<&dyn StepUndo<World>> {
        None
    }

    fn irreversible(&self) -> bool {
        true
    }
}

/// A wrongly defined last step: irreversible, yet with an undo.
pub struct IrreversibleWithUndo;

#[async_trait]
impl SagaStep<World> for IrreversibleWithUndo {
    fn name(&self) -> &'static str {
        MARK_RUNNING.as_str()
    }

    async fn run(&self, _world: &World, _inputs: &StepInputs) -> Result<Value, StepError> {
        Ok(json!({}))
    }

    fn undo(&self) -> Option<&dyn StepUndo<World>> {
        Some(self)
    }

    fn irreversible(&self) -> bool {
        true
    }
}

#[async_trait]
impl StepUndo<World> for IrreversibleWithUndo {
    async fn undo(&self, _world: &World, _inputs: &StepInputs) -> Result<(), StepError> {
        Ok(())
    }
}

pub fn definition() -> SagaDefinition<World> {
    SagaDefinition::new(
        "toy_create",
        vec![
            Box::new(Resource {
                name: RESERVE_SLOT,
                depends_on: None,
            }),
            Box::new(Resource {
                name: CREATE_VOLUME,
                depends_on: Some(RESERVE_SLOT),
            }),
            Box::new(Resource {
                name: START_VM,
                depends_on: Some(CREATE_VOLUME),
            }),
            Box::new(MarkRunning),
        ],
    )
    .unwrap()
}

/// The toy saga with a step that has no undo (`check_quota`) after `reserve_slot`.
pub fn definition_with_a_check() -> SagaDefinition<World> {
    SagaDefinition::new(
        "toy_create_checked",
        vec![
            Box::new(Resource {
                name: RESERVE_SLOT,
                depends_on: None,
            }),
            Box::new(CheckQuota),
            Box::new(Resource {
                name: CREATE_VOLUME,
                depends_on: Some(RESERVE_SLOT),
            }),
            Box::new(MarkRunning),
        ],
    )
    .unwrap()
}

pub fn params() -> Value {
    json!({ "id": "sbx1" })
}
