//! Where a create's milliseconds go: a tracing layer that times the spans the create path opens
//! (`saga.step [<step>]`, `saga.log_write`, `command.stage_values [<step>]`,
//! `command.round_trip [<step>]`, `vault.reveal`, `session.catch_up`, …) from creation to
//! close, grouped by name and `step` field and by the bench variant running at the time; and
//! sea-orm's query spans (`db: …`), whose count per create is the store's round trips.
//!
//! It only measures: it must never print span fields other than the step name (spans carry
//! no values, and this layer reads no other field).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::stats::Samples;

/// Span durations per (variant, span label), recorded while a variant is set.
#[derive(Clone, Default)]
pub struct SpanTimes {
    inner: Arc<Mutex<Recording>>,
}

#[derive(Default)]
struct Recording {
    /// The variant whose calls are running now; `None`: spans are not recorded.
    variant: Option<&'static str>,
    samples: BTreeMap<(&'static str, String), Samples>,
}

impl SpanTimes {
    /// Installs the recording layer as the process's subscriber.
    pub fn install() -> Self {
        use tracing_subscriber::layer::SubscriberExt;
        let times = Self::default();
        let subscriber = tracing_subscriber::registry().with(Recorder {
            times: times.clone(),
        });
        if tracing::subscriber::set_global_default(subscriber).is_err() {
            println!("(span timings unavailable: a tracing subscriber is already installed)");
        }
        times
    }

    /// Spans closed from now on count for `variant` (until `stop`).
    pub fn record_as(&self, variant: &'static str) {
        self.lock().variant = Some(variant);
    }

    /// Stops recording (warm-up rounds, destroys, baselines).
    pub fn stop(&self) {
        self.lock().variant = None;
    }

    /// Prints the table of `variant`: p50 and mean per span, and how many closed per create.
    pub fn print(&self, variant: &'static str, creates: usize) {
        let recording = self.lock();
        println!();
        println!("== spans of `{variant}` (opened to closed; nested spans are inside their parent's time)");
        for ((of, label), samples) in &recording.samples {
            if *of != variant {
                continue;
            }
            println!(
                "{:<46} p50 {:>7.2} ms  mean {:>7.2} ms  ({:.1} per create)",
                label,
                crate::stats::ms(samples.p50()),
                crate::stats::ms(samples.mean()),
                samples.len() as f64 / creates.max(1) as f64
            );
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recording> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Recorder {
    times: SpanTimes,
}

/// Kept in a span's extensions: when it opened, and its label.
struct Opened {
    at: Instant,
    label: String,
}

/// Reads the `step` field only.
struct StepField(Option<String>);

impl Visit for StepField {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "step" {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "step" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, context: Context<'_, S>) {
        let metadata = attributes.metadata();
        let name = metadata.name();
        // Our own spans, and the store's queries (sea-orm's, to count round trips); the
        // HTTP/2 and runtime internals only add noise.
        let label = if metadata.target().starts_with("osb") {
            let mut step = StepField(None);
            attributes.record(&mut step);
            match step.0 {
                Some(step) => format!("{name} [{step}]"),
                None => name.to_owned(),
            }
        } else if metadata.target().starts_with("sea_orm") {
            format!("db: sea-orm {name}")
        } else {
            return;
        };
        if let Some(span) = context.span(id) {
            span.extensions_mut().insert(Opened {
                at: Instant::now(),
                label,
            });
        }
    }

    fn on_close(&self, id: Id, context: Context<'_, S>) {
        let Some(span) = context.span(&id) else {
            return;
        };
        let extensions = span.extensions();
        let Some(opened) = extensions.get::<Opened>() else {
            return;
        };
        let elapsed = opened.at.elapsed();
        let mut recording = self.times.lock();
        if let Some(variant) = recording.variant {
            recording
                .samples
                .entry((variant, opened.label.clone()))
                .or_default()
                .push(elapsed);
        }
    }
}
