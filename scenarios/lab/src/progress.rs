//! Progress bars: on a terminal only, never under CI or when piped.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// `true` when progress should be drawn: stderr is a terminal and `CI` is
/// not set.
pub fn enabled() -> bool {
    std::env::var_os("CI").is_none() && std::io::stderr().is_terminal()
}

/// A bar counting `len` steps (hidden when [`enabled`] is false). It
/// redraws five times a second, so that the clock and the spinner move
/// during a long step (one case of a scenario can take a minute).
pub fn steps(len: u64) -> ProgressBar {
    if !enabled() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
