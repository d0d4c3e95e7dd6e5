// SPDX-License-Identifier: GPL-2.0

//! Progress bars for long work (verify of large buffers, bench, fuzz,
//! stress): drawn on standard error only when it is a terminal, so that logs,
//! pipes and the VM's serial console stay clean, and without colour when
//! NO_COLOR is set.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar of `len` steps labelled `what`; hidden unless stderr is a terminal.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    let template = if std::env::var_os("NO_COLOR").is_some() {
        "{msg} [{bar:30}] {pos}/{len} {elapsed}"
    } else {
        "{msg} [{bar:30.cyan/blue}] {pos}/{len} {elapsed}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(what.to_string());
    pb
}
