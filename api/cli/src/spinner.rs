//! A spinner on stderr while a long call (create, fork, restore, checkpoint, snapshot) waits for
//! the API. It is drawn only when stderr is a terminal, so pipes, logs and tests never see it, and
//! it must never touch stdout, which scripts parse.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A running spinner (or nothing when stderr is not a terminal); cleared when dropped.
pub(crate) struct Spinner(Option<ProgressBar>);

impl Spinner {
    /// Starts a spinner saying `message` when `enabled`.
    pub(crate) fn start(enabled: bool, message: &str) -> Self {
        if !enabled {
            return Self(None);
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            bar.set_style(style);
        }
        bar.set_message(message.to_owned());
        bar.enable_steady_tick(Duration::from_millis(100));
        Self(Some(bar))
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}
