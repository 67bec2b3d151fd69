//! The kiosk screen: one renderer ([`render`]) drawing with `embedded-graphics` into an
//! RGB image, and [`Screen`]s that show it (PNG snapshots, Linux framebuffer, simulator).

use image::RgbImage;

use crate::error::Result;

#[cfg(feature = "framebuffer")]
pub mod fbdev;
pub mod png;
pub mod render;
#[cfg(feature = "simulator")]
pub mod simulator;

pub use render::{BAR_COLOURS, PA_BADGE_COLOUR, ScreenState, render};
/// The kiosk screen's draw target (an [`RgbImage`] canvas).
pub use sleeve_shared::canvas::RgbCanvas as ImageCanvas;

/// Something that shows rendered kiosk screens.
pub trait Screen {
    /// Shows one screen; `index` numbers the frames.
    fn show(&mut self, index: u64, screen: &RgbImage) -> Result<()>;

    /// False once the user closed the screen (simulator window); the run loop stops.
    fn is_open(&self) -> bool {
        true
    }

    /// Whether frame `index` will be shown; the loop renders only frames some screen wants.
    fn wants(&self, _index: u64) -> bool {
        true
    }
}
