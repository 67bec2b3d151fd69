//! Frame sources: files, sequences, and failures that are retried instead of crashing.

use std::time::Duration;

use image::{Rgb, RgbImage};
use sleeve_edge::EdgeError;
use sleeve_edge::display::png::write_png;
use sleeve_edge::source::{Frame, FrameSource, ImageFiles, ImageSequence, RetryPolicy, Retrying};

/// Yields `total` frames but fails `fail_times` times before frame `fail_at`, like a
/// camera unplugged and plugged back in; counts reconnects.
struct Flaky {
    next: u64,
    total: u64,
    fail_at: u64,
    fail_times: u32,
    reconnects: u32,
}

impl FrameSource for Flaky {
    fn describe(&self) -> String {
        "flaky".into()
    }
    fn next_frame(&mut self) -> Result<Option<Frame>, EdgeError> {
        if self.next >= self.total {
            return Ok(None);
        }
        if self.next == self.fail_at && self.fail_times > 0 {
            self.fail_times -= 1;
            return Err(EdgeError::source("flaky", "device disappeared"));
        }
        self.next += 1;
        Ok(Some(Frame {
            image: RgbImage::new(4, 4),
            index: self.next - 1,
            name: "flaky".into(),
            decode_ms: 0.0,
            truth: None,
        }))
    }
    fn reconnect(&mut self) -> Result<(), EdgeError> {
        self.reconnects += 1;
        Ok(())
    }
}

fn quick(max_failures: Option<u32>) -> RetryPolicy {
    RetryPolicy {
        initial: Duration::from_millis(1),
        max: Duration::from_millis(4),
        max_failures,
    }
}

#[test]
fn a_source_failing_mid_run_is_retried_not_fatal() {
    let flaky = Flaky {
        next: 0,
        total: 6,
        fail_at: 3,
        fail_times: 3,
        reconnects: 0,
    };
    let mut src = Retrying::new(flaky, quick(None));
    let mut got = Vec::new();
    while let Some(f) = src.next_frame().unwrap() {
        got.push(f.index);
    }
    assert_eq!(got, [0, 1, 2, 3, 4, 5]);
    assert_eq!(src.failures(), 3);
    assert_eq!(src.inner().reconnects, 3);
}

#[test]
fn a_dead_source_gives_up_after_the_limit() {
    let flaky = Flaky {
        next: 0,
        total: 6,
        fail_at: 1,
        fail_times: 100,
        reconnects: 0,
    };
    let mut src = Retrying::new(flaky, quick(Some(4)));
    assert!(src.next_frame().unwrap().is_some());
    let e = src.next_frame().unwrap_err();
    assert!(e.to_string().contains("device disappeared"));
    assert_eq!(src.failures(), 4);
}

#[test]
fn files_skip_a_corrupt_image_and_sequences_stop_at_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..3u8 {
        write_png(
            &dir.path().join(format!("frame_{i:05}.png")),
            &RgbImage::from_pixel(5, 4, Rgb([i, 0, 0])),
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("frame_00001.png"), b"not a png").unwrap();
    write_png(&dir.path().join("frame_00004.png"), &RgbImage::new(5, 4)).unwrap(); // after a gap

    let files = ImageFiles::new(&[dir.path().display().to_string()], false).unwrap();
    let mut src = Retrying::new(files, quick(Some(3)));
    let mut reds = Vec::new();
    while let Some(f) = src.next_frame().unwrap() {
        reds.push(f.image.get_pixel(0, 0).0[0]);
    }
    assert_eq!(
        reds,
        [0, 2, 0],
        "corrupt frame_00001 skipped, frame_00004 read"
    );
    // A bad file is counted as a bad input, not retried as a source failure.
    assert_eq!(src.bad_inputs(), 1);
    assert_eq!(src.failures(), 0);

    let pattern = format!("{}/frame_%05d.png", dir.path().display());
    let mut seq = ImageSequence::new(&pattern, 2).unwrap();
    assert_eq!(
        seq.next_frame().unwrap().unwrap().image.get_pixel(0, 0).0[0],
        2
    );
    assert!(
        seq.next_frame().unwrap().is_none(),
        "stops at the missing frame_00003"
    );
    assert!(ImageSequence::new(&pattern, 7).is_err());

    let glob = format!("{}/frame_0000[24].png", dir.path().display());
    assert_eq!(
        ImageFiles::new(&[glob], false).unwrap().describe(),
        "2 image file(s)"
    );
    assert!(ImageFiles::new(&[format!("{}/*.nothing", dir.path().display())], false).is_err());
}
