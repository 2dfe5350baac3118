//! What a step sees: the saga's parameters and the outputs of the steps completed before it,
//! by step name, as stored in the log.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;

use crate::error::StepError;

/// Parameters and earlier outputs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepInputs {
    pub(crate) params: serde_json::Value,
    pub(crate) outputs: BTreeMap<String, serde_json::Value>,
}

impl StepInputs {
    /// The saga parameters as `T`.
    pub fn params<T: DeserializeOwned>(&self) -> Result<T, StepError> {
        serde_json::from_value(self.params.clone())
            .map_err(|error| StepError::new(format!("saga parameters are malformed: {error}")))
    }

    /// The output of an earlier step as `T`; an error if it did not run (yet).
    pub fn output<T: DeserializeOwned>(&self, step: &str) -> Result<T, StepError> {
        let value = self
            .outputs
            .get(step)
            .ok_or_else(|| StepError::new(format!("step {step} has no recorded output")))?;
        serde_json::from_value(value.clone())
            .map_err(|error| StepError::new(format!("output of step {step} is malformed: {error}")))
    }

    /// The output of an earlier step if it completed (undos of partly run steps use this).
    pub fn output_if_any<T: DeserializeOwned>(&self, step: &str) -> Option<T> {
        self.outputs
            .get(step)
            .and_then(|value| serde_json::from_value(value.clone()).ok())
    }
}
