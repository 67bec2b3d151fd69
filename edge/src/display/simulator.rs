//! A desktop window through `embedded-graphics-simulator` (SDL2), for development without
//! a kiosk screen. Build with `--features simulator` (needs the SDL2 development files).

use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics_simulator::{
    OutputSettingsBuilder, SimulatorDisplay, SimulatorEvent, Window,
};
use image::RgbImage;

use crate::display::Screen;
use crate::display::render::{HEIGHT, WIDTH};
use crate::error::Result;

/// The simulator window as a [`Screen`].
pub struct SimulatorScreen {
    display: SimulatorDisplay<Rgb888>,
    window: Window,
    open: bool,
}

impl SimulatorScreen {
    /// Opens the window.
    pub fn new() -> Self {
        Self {
            display: SimulatorDisplay::new(Size::new(WIDTH, HEIGHT)),
            window: Window::new(
                "sleeve-edge",
                &OutputSettingsBuilder::new().scale(1).build(),
            ),
            open: true,
        }
    }
}

impl Default for SimulatorScreen {
    fn default() -> Self {
        Self::new()
    }
}

impl Screen for SimulatorScreen {
    fn show(&mut self, _index: u64, screen: &RgbImage) -> Result<()> {
        let pixels = screen.enumerate_pixels().map(|(x, y, p)| {
            Pixel(
                Point::new(x as i32, y as i32),
                Rgb888::new(p.0[0], p.0[1], p.0[2]),
            )
        });
        let _ = self.display.draw_iter(pixels);
        self.window.update(&self.display);
        if self.window.events().any(|e| e == SimulatorEvent::Quit) {
            self.open = false;
        }
        Ok(())
    }

    fn is_open(&self) -> bool {
        self.open
    }
}
