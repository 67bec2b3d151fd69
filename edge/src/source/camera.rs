//! Live USB (UVC) cameras through nokhwa's V4L2 backend, with reconnection.
//!
//! Formats: MJPEG (default; what most UVC cameras deliver at 640×480 and above) or YUYV,
//! both decoded to RGB by nokhwa. A camera that disappears (unplugged, driver reset) makes
//! `next_frame` fail; [`FrameSource::reconnect`] reopens it when it comes back.

use std::time::Instant;

use image::RgbImage;
use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType,
    Resolution,
};
use nokhwa::{Camera, query};
use serde::Serialize;

use crate::engine::ms;
use crate::error::{EdgeError, Result};
use crate::source::{Frame, FrameSource};

/// Which camera and how.
#[derive(Clone, Debug)]
pub struct CameraConfig {
    /// V4L2 index (`/dev/videoN`).
    pub index: u32,
    /// Requested width.
    pub width: u32,
    /// Requested height.
    pub height: u32,
    /// Requested frame rate.
    pub fps: u32,
    /// `true` for YUYV, `false` for MJPEG.
    pub yuyv: bool,
}

impl Default for CameraConfig {
    fn default() -> Self {
        Self {
            index: 0,
            width: 640,
            height: 480,
            fps: 30,
            yuyv: false,
        }
    }
}

/// A camera the system reports.
#[derive(Clone, Debug, Serialize)]
pub struct CameraDescription {
    /// Index or path.
    pub index: String,
    /// Name.
    pub name: String,
    /// Driver description.
    pub description: String,
}

/// Lists V4L2 cameras.
pub fn list_cameras() -> Result<Vec<CameraDescription>> {
    let cams = query(ApiBackend::Video4Linux).map_err(|e| EdgeError::source("camera", e))?;
    Ok(cams
        .into_iter()
        .map(|c| CameraDescription {
            index: c.index().to_string(),
            name: c.human_name(),
            description: c.description().to_string(),
        })
        .collect())
}

/// A live camera.
pub struct CameraSource {
    cfg: CameraConfig,
    camera: Option<Camera>,
    frames: u64,
}

impl CameraSource {
    /// Opens the camera; a missing camera is an error that lists the ones present.
    pub fn open(cfg: CameraConfig) -> Result<Self> {
        let camera = open_camera(&cfg).map_err(|e| {
            let present = list_cameras()
                .map(|l| {
                    l.iter()
                        .map(|c| format!("{} ({})", c.index, c.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            let present = if present.is_empty() {
                "none".into()
            } else {
                present
            };
            EdgeError::source(
                format!("camera {}", cfg.index),
                format!("{e}; cameras present: {present}"),
            )
        })?;
        Ok(Self {
            cfg,
            camera: Some(camera),
            frames: 0,
        })
    }
}

fn open_camera(cfg: &CameraConfig) -> Result<Camera> {
    let fourcc = if cfg.yuyv {
        FrameFormat::YUYV
    } else {
        FrameFormat::MJPEG
    };
    let wanted = CameraFormat::new(Resolution::new(cfg.width, cfg.height), fourcc, cfg.fps);
    let requested = RequestedFormat::new::<RgbFormat>(RequestedFormatType::Closest(wanted));
    let name = format!("/dev/video{}", cfg.index);
    let mut camera = Camera::new(CameraIndex::Index(cfg.index), requested)
        .map_err(|e| EdgeError::source(&name, e))?;
    camera
        .open_stream()
        .map_err(|e| EdgeError::source(&name, e))?;
    let f = camera.camera_format();
    tracing::info!(camera = %name, format = %f, "camera streaming");
    Ok(camera)
}

impl FrameSource for CameraSource {
    fn describe(&self) -> String {
        format!("camera /dev/video{}", self.cfg.index)
    }

    fn next_frame(&mut self) -> Result<Option<Frame>> {
        let name = self.describe();
        let camera = self
            .camera
            .as_mut()
            .ok_or_else(|| EdgeError::source(&name, "camera is not open"))?;
        let t = Instant::now();
        let buffer = match camera.frame() {
            Ok(b) => b,
            Err(e) => {
                // The device is probably gone: drop it so reconnect() reopens from scratch.
                self.camera = None;
                return Err(EdgeError::source(&name, e));
            }
        };
        let decoded = buffer
            .decode_image::<RgbFormat>()
            .map_err(|e| EdgeError::source(&name, e))?;
        let (w, h) = (decoded.width(), decoded.height());
        let image = RgbImage::from_raw(w, h, decoded.into_raw())
            .ok_or_else(|| EdgeError::source(&name, "decoded frame has the wrong size"))?;
        let frame = Frame {
            image,
            index: self.frames,
            name,
            decode_ms: ms(t),
            truth: None,
        };
        self.frames += 1;
        Ok(Some(frame))
    }

    fn reconnect(&mut self) -> Result<()> {
        if let Some(mut c) = self.camera.take() {
            let _ = c.stop_stream();
        }
        self.camera = Some(open_camera(&self.cfg)?);
        tracing::info!(camera = %self.describe(), "camera reconnected");
        Ok(())
    }
}
