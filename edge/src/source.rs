//! Frame sources behind one trait: image files, numbered sequences, synthetic scenes and
//! live cameras, plus [`Retrying`], which keeps a failing source alive with backoff.

use image::RgbImage;
use serde::Serialize;

use crate::error::Result;

#[cfg(feature = "camera")]
pub mod camera;
pub mod files;
pub mod retry;
pub mod sequence;
#[cfg(feature = "synthetic")]
pub mod synthetic;

pub use files::ImageFiles;
pub use retry::{RetryPolicy, Retrying};
pub use sequence::ImageSequence;

/// What a generated frame is known to contain (synthetic sources only).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FrameTruth {
    /// Sleeve corners in frame pixels, clockwise from top-left; `None` when no sleeve.
    pub corners: Option<[(f32, f32); 4]>,
    /// Whether the cover carries a Parental Advisory label.
    pub pa: bool,
    /// The cover's genre, when known.
    pub genre: Option<String>,
}

/// One frame.
#[derive(Clone, Debug)]
pub struct Frame {
    /// The pixels.
    pub image: RgbImage,
    /// Position in the stream, from 0.
    pub index: u64,
    /// Where it came from (file name, camera, scene number).
    pub name: String,
    /// Milliseconds spent reading and decoding it.
    pub decode_ms: f64,
    /// Ground truth, when the source knows it.
    pub truth: Option<FrameTruth>,
}

/// A stream of frames.
pub trait FrameSource {
    /// Human-readable description for logs.
    fn describe(&self) -> String;

    /// The next frame; `Ok(None)` at the end of a finite stream. An error means this frame
    /// failed; the caller may call [`FrameSource::reconnect`] and try again.
    fn next_frame(&mut self) -> Result<Option<Frame>>;

    /// Tries to recover after an error (reopen a device); the default does nothing.
    fn reconnect(&mut self) -> Result<()> {
        Ok(())
    }

    /// Inputs skipped because they could not be read (image files that do not decode),
    /// so far; each was logged with its name. The default: none.
    fn bad_inputs(&self) -> u64 {
        0
    }
}

impl<S: FrameSource + ?Sized> FrameSource for Box<S> {
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn next_frame(&mut self) -> Result<Option<Frame>> {
        (**self).next_frame()
    }
    fn reconnect(&mut self) -> Result<()> {
        (**self).reconnect()
    }
    fn bad_inputs(&self) -> u64 {
        (**self).bad_inputs()
    }
}
