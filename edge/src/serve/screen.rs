//! The kiosk screen for web clients: a [`Screen`] that hands every `every`-th rendered
//! screen to an encoder thread (latest wins; the frame loop only copies the pixels) which
//! stores it as JPEG in the [`Hub`].

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use image::RgbImage;
use image::codecs::jpeg::JpegEncoder;

use crate::display::Screen;
use crate::error::Result;
use crate::output::now_ms;
use crate::serve::hub::{Hub, Screenshot};

/// JPEG quality of the served screen.
pub const JPEG_QUALITY: u8 = 80;

#[derive(Default)]
struct Pending {
    job: Option<(u64, RgbImage)>,
    done: bool,
}

type Slot = Arc<(Mutex<Pending>, Condvar)>;

/// Publishes screens to a hub (`GET /api/screen.jpg`).
pub struct WebScreen {
    slot: Slot,
    every: u64,
    worker: Option<JoinHandle<()>>,
}

impl WebScreen {
    /// One screen per `every` frames (≥ 1) goes to `hub`.
    pub fn new(hub: Arc<Hub>, every: u64) -> Self {
        let slot: Slot = Arc::new((Mutex::new(Pending::default()), Condvar::new()));
        let s = slot.clone();
        let worker = std::thread::Builder::new()
            .name("screen-jpeg".into())
            .spawn(move || encode_loop(&s, &hub))
            .ok();
        if worker.is_none() {
            tracing::warn!("could not start the screen encoder thread: no web screen");
        }
        Self {
            slot,
            every: every.max(1),
            worker,
        }
    }
}

fn encode_loop(slot: &Slot, hub: &Hub) {
    let (lock, cv) = &**slot;
    loop {
        let job = {
            let mut g = lock.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if let Some(job) = g.job.take() {
                    break Some(job);
                }
                if g.done || hub.is_closed() {
                    break None;
                }
                g = cv.wait(g).unwrap_or_else(|p| p.into_inner());
            }
        };
        let Some((frame, img)) = job else { return };
        match encode_jpeg(&img, JPEG_QUALITY) {
            Ok(jpeg) => hub.set_screen(Screenshot {
                jpeg: Arc::new(jpeg),
                frame,
                ts_ms: now_ms(),
            }),
            Err(e) => tracing::warn!(error = %e, "screen JPEG encoding failed"),
        }
    }
}

/// Encodes an RGB image as baseline JPEG.
pub fn encode_jpeg(img: &RgbImage, quality: u8) -> image::ImageResult<Vec<u8>> {
    let mut out = Vec::with_capacity(64 << 10);
    JpegEncoder::new_with_quality(&mut out, quality).encode_image(img)?;
    Ok(out)
}

impl Screen for WebScreen {
    fn wants(&self, index: u64) -> bool {
        self.worker.is_some() && index.is_multiple_of(self.every)
    }

    fn show(&mut self, index: u64, screen: &RgbImage) -> Result<()> {
        if self.wants(index) {
            let (lock, cv) = &*self.slot;
            // A screen the encoder has not taken yet is simply replaced.
            lock.lock().unwrap_or_else(|p| p.into_inner()).job = Some((index, screen.clone()));
            cv.notify_one();
        }
        Ok(())
    }
}

impl Drop for WebScreen {
    fn drop(&mut self) {
        self.slot.0.lock().unwrap_or_else(|p| p.into_inner()).done = true;
        self.slot.1.notify_all();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::RunInfo;

    #[test]
    fn every_nth_screen_is_encoded_as_jpeg() {
        let hub = Hub::new(RunInfo::default(), 4);
        let mut web = WebScreen::new(hub.clone(), 3);
        assert!(web.wants(0) && !web.wants(1) && !web.wants(2) && web.wants(3));
        let img = RgbImage::from_pixel(40, 30, image::Rgb([200, 30, 30]));
        for i in 0..5 {
            web.show(i, &img).unwrap();
        }
        drop(web); // joins the encoder after its last job
        let shot = hub.screen().expect("a screen");
        assert_eq!(shot.frame, 3);
        let back = sleeve_shared::imageio::decode_rgb(&shot.jpeg).unwrap();
        assert_eq!(back.dimensions(), (40, 30));
        assert!(back.get_pixel(20, 15)[0] > 150);
    }
}
