// SPDX-License-Identifier: GPL-2.0

//! Progress bars for long work (verify of large buffers, bench, fuzz,
//! stress): drawn on standard error only when it is a terminal, so that logs,
//! pipes and the VM's serial console stay clean, and without colour when
//! NO_COLOR is set.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Whether bars are drawn at all: only on a terminal.
pub fn visible() -> bool {
    std::io::stderr().is_terminal()
}

fn style(unit: &str) -> Option<ProgressStyle> {
    let bar = if std::env::var_os("NO_COLOR").is_some() {
        "{bar:30}"
    } else {
        "{bar:30.cyan/blue}"
    };
    ProgressStyle::with_template(&format!(
        "{{msg}} [{bar}] {{pos}}/{{len}}{unit} {{elapsed}}"
    ))
    .ok()
    .map(|s| s.progress_chars("=> "))
}

/// A bar of `len` steps labelled `what`; hidden unless stderr is a terminal.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    bar_of(len, what, "")
}

/// [`bar`], with `unit` after the count (e.g. " s").
fn bar_of(len: u64, what: &str, unit: &str) -> ProgressBar {
    let target = if visible() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let pb = ProgressBar::with_draw_target(Some(len), target);
    if let Some(style) = style(unit) {
        pb.set_style(style);
    }
    pb.set_message(what.to_string());
    pb
}

/// A bar for work bounded by time rather than steps (fuzz, stress): it fills
/// over `seconds`, ticked by its own thread, and clears itself when dropped.
pub struct Timed {
    bar: ProgressBar,
    stop: Arc<AtomicBool>,
    ticker: Option<JoinHandle<()>>,
}

impl Timed {
    /// Starts the bar; when stderr is not a terminal, no thread is started.
    ///
    /// Start it only where a fork cannot follow while it runs (after the
    /// forks, or in the parent once they are done): a child forked while the
    /// ticker holds the terminal's lock would inherit the lock held.
    pub fn start(seconds: u64, what: &str) -> Self {
        let bar = bar_of(seconds, what, " s");
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = visible().then(|| {
            let (bar, stop) = (bar.clone(), Arc::clone(&stop));
            let started = Instant::now();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    bar.set_position(started.elapsed().as_secs().min(seconds));
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
        });
        Self { bar, stop, ticker }
    }

    /// Replaces the label (e.g. with a running count).
    pub fn set_message(&self, msg: String) {
        self.bar.set_message(msg);
    }
}

impl Drop for Timed {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
        self.bar.finish_and_clear();
    }
}
