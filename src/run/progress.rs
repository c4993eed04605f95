//! Progress bars of long runs (hidden when the caller asks for quiet output).

use indicatif::{ProgressBar, ProgressStyle};

/// A bar over the G steps of one run, at `position` of `total`; its prefix and message are the
/// run's to set (losses, metrics).
pub fn steps(visible: bool, total: u64, position: u64) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} G steps  {prefix}  {msg}  [{elapsed} < {eta}]",
        )
        .expect("valid template"),
    );
    bar.set_position(position);
    bar
}

/// A bar over one phase of a study (`total` units of work), named by `phase`.
pub fn phase(visible: bool, phase: &str, total: u64) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>22} {bar:30} {percent:>3}%  {msg}  [{elapsed} < {eta}]",
        )
        .expect("valid template"),
    );
    bar.set_prefix(phase.to_owned());
    bar
}
