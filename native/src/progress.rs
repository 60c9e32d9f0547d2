//! Per-step progress on a terminal (with the rate and an ETA), silent when stderr is not one.

use std::io::{IsTerminal, Write};
use std::time::Instant;

/// Progress of one denoising loop.
pub struct StepProgress {
    label: String,
    started: Instant,
    terminal: bool,
}

impl StepProgress {
    pub fn new(label: String) -> Self {
        Self {
            label,
            started: Instant::now(),
            terminal: std::io::stderr().is_terminal(),
        }
    }

    /// Names the loop anew (a batch turns out to hold more images).
    pub fn relabel(&mut self, label: String) {
        self.label = label;
    }

    /// Step `done` of `total` has finished.
    pub fn step(&mut self, done: usize, total: usize) {
        if !self.terminal || done == 0 {
            return;
        }
        let per_step = self.started.elapsed().as_secs_f64() / done as f64;
        let eta = per_step * total.saturating_sub(done) as f64;
        eprint!(
            "\r  {}: step {done}/{total} ({per_step:.2} s/step, ETA {})\x1b[K",
            self.label,
            clock(eta)
        );
        let _ = std::io::stderr().flush();
        if done == total {
            eprintln!();
        }
    }
}

/// Seconds as `42s` or `3m05s`.
pub fn clock(seconds: f64) -> String {
    let s = seconds.round() as u64;
    if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}
