//! The one progress-bar style of the host commands (drawn on stderr only when it is a
//! terminal).

use std::borrow::Cow;

use indicatif::{ProgressBar, ProgressStyle};

/// The shared style: `label [=====>    ] 12/40 message (3.1/s, 4s<9s)`.
pub fn style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix} [{bar:30}] {pos}/{len} {msg} ({per_sec}, {elapsed}<{eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}

/// A bar of `len` steps labelled `label` (change it later with `set_prefix`; `set_message`
/// fills the space after the count).
pub fn bar(len: u64, label: impl Into<Cow<'static, str>>) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(style());
    pb.set_prefix(label);
    pb
}

/// [`bar`], or a hidden bar when `show` is false.
pub fn bar_if(show: bool, len: u64, label: impl Into<Cow<'static, str>>) -> ProgressBar {
    if show {
        bar(len, label)
    } else {
        ProgressBar::hidden()
    }
}
