//! A toy create-like saga: reserve_slot → create_volume (uses the slot) → start_vm → mark_running
//! (irreversible). Every action and undo is idempotent, like real steps must be.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use osb_saga::{SagaDefinition, SagaStep, StepError, StepInputs};
use serde_json::{json, Value};

/// What the saga acts on.
#[derive(Debug, Default)]
pub struct World {
    pub resources: Mutex<BTreeSet<String>>,
    pub running: Mutex<bool>,
    pub runs: AtomicU32,
    /// Undos of this step fail this many times before succeeding.
    pub failing_undo: Mutex<Option<(&'static str, u32)>>,
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

struct Resource {
    name: &'static str,
    depends_on: Option<&'static str>,
}

#[async_trait]
impl SagaStep<World> for Resource {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn run(&self, world: &World, inputs: &StepInputs) -> Result<Value, StepError> {
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

    async fn undo(&self, world: &World, inputs: &StepInputs) -> Result<(), StepError> {
        if world.undo_should_fail(self.name) {
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

struct MarkRunning;

#[async_trait]
impl SagaStep<World> for MarkRunning {
    fn name(&self) -> &'static str {
        "mark_running"
    }

    async fn run(&self, world: &World, _inputs: &StepInputs) -> Result<Value, StepError> {
        *world.running.lock().unwrap() = true;
        Ok(json!({}))
    }

    async fn undo(&self, _world: &World, _inputs: &StepInputs) -> Result<(), StepError> {
        Ok(())
    }

    fn irreversible(&self) -> bool {
        true
    }
}

pub fn definition() -> SagaDefinition<World> {
    SagaDefinition::new(
        "toy_create",
        vec![
            Box::new(Resource {
                name: "reserve_slot",
                depends_on: None,
            }),
            Box::new(Resource {
                name: "create_volume",
                depends_on: Some("reserve_slot"),
            }),
            Box::new(Resource {
                name: "start_vm",
                depends_on: Some("create_volume"),
            }),
            Box::new(MarkRunning),
        ],
    )
    .unwrap()
}

pub fn params() -> Value {
    json!({ "id": "sbx1" })
}
