//! Progress bars (indicatif) on standard error: one line per file (bytes, rate, ETA) and a total
//! line when there are several. Only drawn when standard error is a terminal and the output is
//! not `--json`; otherwise nothing is drawn and the same lines are printed plainly.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bars of one command.
#[derive(Clone)]
pub struct Bars {
    multi: MultiProgress,
    visible: bool,
}

impl Bars {
    /// Bars when standard error is a terminal and `quiet` is false (`--json`).
    pub fn new(quiet: bool) -> Bars {
        let visible = !quiet && std::io::stderr().is_terminal();
        let target = if visible {
            ProgressDrawTarget::stderr_with_hz(10)
        } else {
            ProgressDrawTarget::hidden()
        };
        Bars {
            multi: MultiProgress::with_draw_target(target),
            visible,
        }
    }

    /// A bar of `len` bytes labelled `label`.
    pub fn bytes(&self, label: &str, len: u64) -> Progress {
        let bar = self.multi.add(ProgressBar::new(len));
        if self.visible {
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:24!} [{bar:28}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} ETA {eta:>3} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(label.to_owned());
            bar.enable_steady_tick(Duration::from_millis(500));
        }
        Progress { bar }
    }

    /// Prints a line above the bars (or plainly on standard output when there are none).
    #[allow(clippy::print_stdout)]
    pub fn say(&self, line: &str) {
        if self.visible {
            self.multi.suspend(|| say!("{line}"));
        } else {
            say!("{line}");
        }
    }

    /// Prints a line on standard error above the bars.
    #[allow(clippy::print_stderr)]
    pub fn warn(&self, line: &str) {
        self.multi.suspend(|| eprintln!("{line}"));
    }
}

/// One bar; a clone moves the same bar.
#[derive(Clone)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    pub fn add(&self, n: u64) {
        self.bar.inc(n);
    }

    /// Takes back bytes whose transfer failed and will be sent again.
    pub fn take_back(&self, n: u64) {
        self.bar.dec(n);
    }

    pub fn set_message(&self, msg: &str) {
        self.bar.set_message(msg.to_owned());
    }

    pub fn finish(&self, msg: &str) {
        self.bar.set_message(msg.to_owned());
        self.bar.finish();
    }
}

/// Moves one transfer's bytes on its file's bar and on the total's.
#[derive(Clone)]
pub struct Meter {
    pub file: Progress,
    pub total: Option<Progress>,
}

impl Meter {
    pub fn add(&self, n: u64) {
        self.file.add(n);
        if let Some(t) = &self.total {
            t.add(n);
        }
    }

    pub fn take_back(&self, n: u64) {
        self.file.take_back(n);
        if let Some(t) = &self.total {
            t.take_back(n);
        }
    }
}
