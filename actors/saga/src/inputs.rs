//! What a step sees: the saga's parameters and the outputs of the steps completed before it,
//! as stored in the log. Outputs are read back through a [`StepName`], which carries the type
//! the step records, so no step name or output shape is spelled out at the reading site.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;

use crate::error::StepError;

/// A step's name, typed by the output the step records: `StepName<Placed>` reads back as a
/// `Placed`. Define one constant per step next to the saga; the step's `name()` returns its
/// `as_str()`, and later steps read its output with [`StepInputs::output`].
pub struct StepName<Output> {
    name: &'static str,
    output: PhantomData<fn() -> Output>,
}

impl<Output> StepName<Output> {
    /// The step `name` (a lowercase identifier, stable across versions: it is in the log).
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            output: PhantomData,
        }
    }

    /// The name as logged.
    pub const fn as_str(&self) -> &'static str {
        self.name
    }
}

impl<Output: DeserializeOwned> StepName<Output> {
    /// This step's output among a finished saga's outputs (`SagaOutcome::Completed`).
    pub fn find(&self, outputs: &BTreeMap<String, serde_json::Value>) -> Option<Output> {
        outputs
            .get(self.name)
            .and_then(|value| serde_json::from_value(value.clone()).ok())
    }
}

impl<Output> Clone for StepName<Output> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<Output> Copy for StepName<Output> {}

impl<Output> fmt::Debug for StepName<Output> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl<Output> fmt::Display for StepName<Output> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// Parameters and earlier outputs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepInputs {
    /// The saga these inputs belong to (commands to workers are keyed by it).
    pub(crate) saga: osb_proto::SagaId,
    pub(crate) params: serde_json::Value,
    pub(crate) outputs: BTreeMap<String, serde_json::Value>,
}

impl StepInputs {
    /// The saga being run.
    pub fn saga(&self) -> osb_proto::SagaId {
        self.saga
    }

    /// The saga parameters as `T`.
    pub fn params<T: DeserializeOwned>(&self) -> Result<T, StepError> {
        serde_json::from_value(self.params.clone())
            .map_err(|error| StepError::new(format!("saga parameters are malformed: {error}")))
    }

    /// The output of an earlier step; an error if it did not run (yet).
    pub fn output<Output: DeserializeOwned>(
        &self,
        step: StepName<Output>,
    ) -> Result<Output, StepError> {
        let value = self
            .outputs
            .get(step.as_str())
            .ok_or_else(|| StepError::new(format!("step {step} has no recorded output")))?;
        serde_json::from_value(value.clone())
            .map_err(|error| StepError::new(format!("output of step {step} is malformed: {error}")))
    }

    /// The output of an earlier step if it completed (undos of partly run steps use this).
    pub fn output_if_any<Output: DeserializeOwned>(
        &self,
        step: StepName<Output>,
    ) -> Option<Output> {
        self.outputs
            .get(step.as_str())
            .and_then(|value| serde_json::from_value(value.clone()).ok())
    }
}
