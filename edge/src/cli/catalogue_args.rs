//! The catalogue's command-line options (`sleeve-edge run` and `classify`).

use std::path::{Path, PathBuf};

use clap::Args;
use sleeve_shared::catalogue::file::CATALOGUE_FILE;

use super::parse_canny;
use crate::catalogue::{
    AlignConfig, DEFAULT_ALIGN_ENTRIES, DEFAULT_CANDIDATES, DEFAULT_MARGIN, DEFAULT_RECORD_FRAMES,
    DEFAULT_THRESHOLD, MAX_ALIGN_ENTRIES, MAX_CANDIDATES, MatchConfig, Recogniser,
};

/// Catalogue options of `sleeve-edge run` and `classify`.
#[derive(Args, Debug, Clone)]
pub struct CatalogueArgs {
    /// The store's catalogue (`sleeve catalogue build`); default: `catalogue.slvc` in the
    /// bundle directory, used when present and reloaded when it changes.
    #[arg(long, value_name = "FILE")]
    pub catalogue: Option<PathBuf>,
    /// Genre only: neither load nor watch a catalogue.
    #[arg(long, conflicts_with = "catalogue")]
    pub no_catalogue: bool,
    /// Cosine similarity at or above which a sleeve is a catalogued record, (0, 1].
    #[arg(long, default_value_t = DEFAULT_THRESHOLD)]
    pub match_threshold: f32,
    /// How much the best record must beat the next one, [0, 1).
    #[arg(long, default_value_t = DEFAULT_MARGIN)]
    pub match_margin: f32,
    /// How many of the sleeve finder's candidate outlines are matched per frame (the best
    /// match wins): a part of the cover or the cover with its shadow is often ranked
    /// first, the right outline next.
    #[arg(long, default_value_t = DEFAULT_CANDIDATES as u16,
          value_parser = clap::value_parser!(u16).range(1..=MAX_CANDIDATES as i64))]
    pub match_candidates: u16,
    /// When a sleeve is not a match at first, align its outline to this many of the best
    /// entries and search again (the verification step; 0 turns it off).
    #[arg(long, default_value_t = DEFAULT_ALIGN_ENTRIES as u16,
          value_parser = clap::value_parser!(u16).range(0..=MAX_ALIGN_ENTRIES as i64))]
    pub match_align: u16,
    /// When a frame's outlines give no match, find the sleeve again with these lower Canny
    /// thresholds `LOW,HIGH` and match those outlines too (finds dark sleeves on dark
    /// counters; costs a second sleeve search on frames without a match), or `off`.
    #[arg(long, value_name = "LOW,HIGH|off", value_parser = parse_retry,
          default_value = "10,30")]
    pub match_retry_canny: Retry,
    /// Frames in a row a new record must match before it is shown (1 to 30; the genre's
    /// `--hold-frames` is separate).
    #[arg(long, default_value_t = DEFAULT_RECORD_FRAMES,
          value_parser = clap::value_parser!(u32).range(1..=30))]
    pub record_frames: u32,
}

/// `--match-retry-canny`: the second pass's Canny thresholds, or none.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Retry(pub Option<(f32, f32)>);

/// Parses `--match-retry-canny`: `off` or `LOW,HIGH` as [`parse_canny`] takes them.
pub fn parse_retry(s: &str) -> Result<Retry, String> {
    if s.trim().eq_ignore_ascii_case("off") {
        return Ok(Retry(None));
    }
    parse_canny(s).map(|t| Retry(Some(t)))
}

impl CatalogueArgs {
    /// The recogniser these options ask for (None with `--no-catalogue`); checks ranges.
    pub fn recogniser(&self, bundle: &Path) -> anyhow::Result<Option<Recogniser>> {
        if self.no_catalogue {
            return Ok(None);
        }
        if !(self.match_threshold > 0.0 && self.match_threshold <= 1.0) {
            anyhow::bail!(
                "--match-threshold {} is out of range (0, 1]",
                self.match_threshold
            );
        }
        if !(0.0..1.0).contains(&self.match_margin) {
            anyhow::bail!(
                "--match-margin {} is out of range [0, 1)",
                self.match_margin
            );
        }
        let path = self
            .catalogue
            .clone()
            .unwrap_or_else(|| bundle.join(CATALOGUE_FILE));
        if self.catalogue.is_some() && !path.exists() {
            tracing::warn!(catalogue = %path.display(), "catalogue file not found: genre only until it appears");
        }
        Ok(Some(Recogniser::new(
            path,
            MatchConfig {
                threshold: self.match_threshold,
                margin: self.match_margin,
                candidates: self.match_candidates as usize,
                align: AlignConfig {
                    entries: self.match_align as usize,
                    ..AlignConfig::default()
                },
                retry_canny: self.match_retry_canny.0,
                record_frames: self.record_frames,
                ..MatchConfig::default()
            },
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_thresholds_parse_with_ranges_and_off() {
        assert_eq!(parse_retry("10,30"), Ok(Retry(Some((10.0, 30.0)))));
        assert_eq!(parse_retry("OFF"), Ok(Retry(None)));
        assert!(parse_retry("30,10").unwrap_err().contains("LOW <= HIGH"));
        assert!(parse_retry("none").unwrap_err().contains("not LOW,HIGH"));
        // the flag's default is the library's
        use clap::{Args, FromArgMatches};
        let cmd = CatalogueArgs::augment_args(clap::Command::new("t"));
        let args = CatalogueArgs::from_arg_matches(&cmd.get_matches_from(["t"])).unwrap();
        let lib = crate::catalogue::MatchConfig::default();
        assert_eq!(args.match_retry_canny.0, lib.retry_canny);
        assert_eq!(args.record_frames, lib.record_frames);
    }
}
