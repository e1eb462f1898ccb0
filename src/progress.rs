//! A progress line for people watching a long run on a terminal; nothing otherwise (CronJob
//! logs stay clean).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Cheap to clone; a no-op when disabled.
#[derive(Clone, Default)]
pub struct Progress(Option<ProgressBar>);

impl Progress {
    /// A spinner on standard error, when `enabled` (a terminal, text logs).
    pub fn new(enabled: bool, what: &str) -> Self {
        if !enabled {
            return Progress(None);
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{spinner} {prefix} {elapsed} · {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.set_prefix(what.to_owned());
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Progress(Some(bar))
    }

    pub fn update(&self, files: u64, bytes: u64, alarms: u64, errors: u64) {
        if let Some(bar) = &self.0 {
            bar.set_message(format!(
                "{files} files · {} · {alarms} alarms · {errors} errors",
                indicatif::HumanBytes(bytes)
            ));
        }
    }

    pub fn update_text(&self, text: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(text.to_owned());
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
