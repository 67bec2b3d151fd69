//! A numbered image sequence such as `frame_%05d.png`, read until the first missing number.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::engine::ms;
use crate::error::{EdgeError, Result};
use crate::source::files::read_or_skip;
use crate::source::{Frame, FrameSource};

/// A printf-style pattern with one `%d` / `%0Nd` placeholder.
#[derive(Clone, Debug)]
pub struct SequencePattern {
    prefix: String,
    width: usize,
    suffix: String,
}

impl SequencePattern {
    /// Parses `"dir/frame_%05d.png"`; exactly one placeholder is required.
    pub fn parse(pattern: &str) -> Result<Self> {
        let bad = |why: &str| EdgeError::source(pattern, format!("bad sequence pattern: {why}"));
        let start = pattern.find('%').ok_or_else(|| bad("no %d placeholder"))?;
        let rest = &pattern[start + 1..];
        let d = rest
            .find('d')
            .ok_or_else(|| bad("placeholder must end in 'd'"))?;
        let spec = &rest[..d];
        if !spec.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad("only %d and %0Nd are supported"));
        }
        // A frame number has at most 20 digits; a wider pad would allocate per frame.
        let width: usize = match spec.parse() {
            Ok(w) if w <= 20 => w,
            Err(_) if spec.is_empty() => 0,
            _ => return Err(bad("the number width must be at most 20")),
        };
        let suffix = &rest[d + 1..];
        if suffix.contains('%') {
            return Err(bad("more than one placeholder"));
        }
        Ok(Self {
            prefix: pattern[..start].to_string(),
            width,
            suffix: suffix.to_string(),
        })
    }

    /// The path of frame `n`.
    pub fn path(&self, n: u64) -> PathBuf {
        PathBuf::from(format!(
            "{}{:0width$}{}",
            self.prefix,
            n,
            self.suffix,
            width = self.width
        ))
    }
}

/// Frames `start, start+1, …` of a [`SequencePattern`], ending at the first missing file.
/// A file that does not decode is logged, counted and skipped.
pub struct ImageSequence {
    pattern: SequencePattern,
    next: u64,
    frames: u64,
    bad: u64,
}

impl ImageSequence {
    /// A sequence from a pattern and first number; the first file must exist.
    pub fn new(pattern: &str, start: u64) -> Result<Self> {
        let pattern = SequencePattern::parse(pattern)?;
        let first = pattern.path(start);
        if !Path::new(&first).is_file() {
            return Err(EdgeError::source(
                first.display().to_string(),
                "first frame of the sequence does not exist",
            ));
        }
        Ok(Self {
            pattern,
            next: start,
            frames: 0,
            bad: 0,
        })
    }
}

impl FrameSource for ImageSequence {
    fn describe(&self) -> String {
        format!("image sequence {}", self.pattern.path(self.next).display())
    }

    fn next_frame(&mut self) -> Result<Option<Frame>> {
        // A file that does not decode is logged, counted and skipped.
        let (path, image, t) = loop {
            let path = self.pattern.path(self.next);
            if !path.exists() {
                return Ok(None);
            }
            self.next += 1;
            let t = Instant::now();
            if let Some(image) = read_or_skip(&path, &mut self.bad) {
                break (path, image, t);
            }
        };
        let frame = Frame {
            image,
            index: self.frames,
            name: path.display().to_string(),
            decode_ms: ms(t),
            truth: None,
        };
        self.frames += 1;
        Ok(Some(frame))
    }

    fn bad_inputs(&self) -> u64 {
        self.bad
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_format_and_reject() {
        let p = SequencePattern::parse("d/frame_%05d.png").unwrap();
        assert_eq!(p.path(42), PathBuf::from("d/frame_00042.png"));
        assert_eq!(
            SequencePattern::parse("f%d.jpg").unwrap().path(7),
            PathBuf::from("f7.jpg")
        );
        for bad in [
            "frame.png",
            "f_%s.png",
            "%d_%d.png",
            "f_%5x.png",
            "f_%0999999999d.png",
        ] {
            assert!(SequencePattern::parse(bad).is_err(), "{bad}");
        }
    }
}
