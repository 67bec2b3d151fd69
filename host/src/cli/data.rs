//! `sleeve dataset …`: import, fetch, dedupe, split and describe cover data sets.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use sleeve_shared::duration::parse_duration;

use sleeve_data::dataset::Dataset;
use sleeve_data::dedupe::{DEFAULT_NEAR_THRESHOLD, DedupeOptions, DedupeReport};
use sleeve_data::fetch::FetchOptions;
use sleeve_data::import::Issue;
use sleeve_data::manifest::DroppedRow;
use sleeve_data::pipeline::{self, ISSUES_FILE, ImportSource};
use sleeve_data::select::Selection;
use sleeve_data::split::SplitConfig;
use sleeve_data::stats;

/// Dataset subcommands.
#[derive(Subcommand, Debug)]
pub enum DatasetCmd {
    /// Import covers into a dataset directory (manifest.csv + images/ by content hash).
    Import(ImportArgs),
    /// Download the images of URL rows (resumable; re-run to continue or retry).
    Fetch(FetchArgs),
    /// Re-run duplicate detection with other settings.
    Dedupe(DedupeArgs),
    /// Assign a stratified, deterministic, leakage-free train/val/test split.
    Split(SplitArgs),
    /// Counts per genre and split, image sizes, file checks; optional PNG plot.
    Stats(StatsArgs),
}

/// Genre selection flags.
#[derive(Args, Debug, Clone, Default)]
pub struct SelectArgs {
    /// Keep only these genres (comma-separated; any spelling, e.g. "Hip-Hop/Rap").
    #[arg(long, value_delimiter = ',')]
    pub genres: Option<Vec<String>>,
    /// Keep only the N largest genres.
    #[arg(long, value_name = "N")]
    pub top_genres: Option<usize>,
    /// Drop genres with fewer than N images.
    #[arg(long, value_name = "N")]
    pub min_per_genre: Option<usize>,
}

impl SelectArgs {
    fn selection(&self) -> Selection {
        Selection {
            genres: self.genres.clone(),
            min_per_genre: self.min_per_genre,
            top_genres: self.top_genres,
        }
    }
}

/// Duplicate-detection flags.
#[derive(Args, Debug, Clone)]
pub struct DedupeFlags {
    /// Near-duplicate threshold: max Hamming distance between 64-bit perceptual hashes.
    #[arg(long, default_value_t = DEFAULT_NEAR_THRESHOLD, value_name = "BITS")]
    pub near_threshold: u32,
    /// Do not look for near-duplicates (exact duplicates are still removed).
    #[arg(long)]
    pub no_near_dups: bool,
    /// Keep only one image of each same-genre near-duplicate group (default: keep all,
    /// always in the same split).
    #[arg(long)]
    pub drop_near_dups: bool,
}

impl DedupeFlags {
    fn options(&self) -> DedupeOptions {
        DedupeOptions {
            near_threshold: (!self.no_near_dups).then_some(self.near_threshold),
            drop_near: self.drop_near_dups,
        }
    }
}

/// `sleeve dataset import`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Source kind and input(s): `folder DIR`, `csv FILE`, `mumu CSV` (with --metadata),
    /// `itunes FEED.json...`.
    #[arg(long, num_args = 2.., value_names = ["KIND", "INPUT"], required = true)]
    pub from: Vec<String>,
    /// Amazon metadata JSON (asin → imUrl) for `--from mumu`.
    #[arg(long)]
    pub metadata: Option<PathBuf>,
    /// Dataset directory to create or extend.
    #[arg(long)]
    pub out: PathBuf,
    /// For `--from itunes`: rewrite artwork URLs to this size in pixels (e.g. 600).
    #[arg(long, value_name = "PX")]
    pub itunes_art_size: Option<u32>,
    /// Genre selection.
    #[command(flatten)]
    pub select: SelectArgs,
    /// Duplicate detection.
    #[command(flatten)]
    pub dedupe: DedupeFlags,
}

/// `sleeve dataset fetch`.
#[derive(Args, Debug)]
pub struct FetchArgs {
    /// Dataset directory.
    #[arg(long)]
    pub data: PathBuf,
    /// Parallel downloads.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Per-request time limit (e.g. 20s, 500ms, 1m), 1ms to 1h.
    #[arg(long, default_value = "20s", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// Retries after timeouts, connection errors, HTTP 5xx/429.
    #[arg(long, default_value_t = 3)]
    pub retries: u32,
    /// Largest accepted image (e.g. 10MB, 512KB, 1000000).
    #[arg(long, default_value = "10MB", value_parser = parse_size)]
    pub max_bytes: u64,
    /// Skip rows whose earlier download failed instead of retrying them.
    #[arg(long)]
    pub skip_failed: bool,
    /// Duplicate detection (runs after downloading).
    #[command(flatten)]
    pub dedupe: DedupeFlags,
}

/// `sleeve dataset dedupe`.
#[derive(Args, Debug)]
pub struct DedupeArgs {
    /// Dataset directory.
    #[arg(long)]
    pub data: PathBuf,
    /// Duplicate detection.
    #[command(flatten)]
    pub dedupe: DedupeFlags,
}

/// `sleeve dataset split`.
#[derive(Args, Debug)]
pub struct SplitArgs {
    /// Dataset directory.
    #[arg(long)]
    pub data: PathBuf,
    /// Validation fraction per genre.
    #[arg(long, default_value_t = 0.1)]
    pub val: f64,
    /// Test fraction per genre.
    #[arg(long, default_value_t = 0.1)]
    pub test: f64,
    /// Random seed (same manifest + seed → same split).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Genre selection (sizes count images).
    #[command(flatten)]
    pub select: SelectArgs,
}

/// `sleeve dataset stats`.
#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Dataset directory.
    #[arg(long)]
    pub data: PathBuf,
    /// Write an overview PNG here.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Trust the manifest: skip re-reading, hashing and decoding every image.
    #[arg(long)]
    pub quick: bool,
}

/// Runs a dataset subcommand.
pub fn run(cmd: DatasetCmd) -> anyhow::Result<()> {
    match cmd {
        DatasetCmd::Import(a) => import(a),
        DatasetCmd::Fetch(a) => fetch(a),
        DatasetCmd::Dedupe(a) => dedupe(a),
        DatasetCmd::Split(a) => split(a),
        DatasetCmd::Stats(a) => stats_cmd(a),
    }
}

fn import_source(a: &ImportArgs) -> anyhow::Result<ImportSource> {
    let (kind, inputs) = a
        .from
        .split_first()
        .context("--from needs a kind and an input")?;
    let one = || -> anyhow::Result<PathBuf> {
        match inputs {
            [p] => Ok(PathBuf::from(p)),
            _ => bail!(
                "--from {kind} takes exactly one input, got {}",
                inputs.len()
            ),
        }
    };
    let src = match kind.as_str() {
        "folder" => ImportSource::Folder(one()?),
        "csv" => ImportSource::Csv(one()?),
        "mumu" => ImportSource::Mumu {
            csv: one()?,
            metadata: a.metadata.clone().context(
                "--from mumu needs --metadata JSON (Amazon metadata with asin and imUrl)",
            )?,
        },
        "itunes" => ImportSource::Itunes {
            feeds: inputs.iter().map(PathBuf::from).collect(),
            art_size: a.itunes_art_size,
        },
        other => bail!("unknown --from kind '{other}' (expected folder, csv, mumu or itunes)"),
    };
    if a.metadata.is_some() && !matches!(src, ImportSource::Mumu { .. }) {
        bail!("--metadata only applies to --from mumu");
    }
    Ok(src)
}

fn import(a: ImportArgs) -> anyhow::Result<()> {
    let src = import_source(&a)?;
    let t0 = Instant::now();
    let s = pipeline::import_into(&a.out, &src, &a.select.selection(), a.dedupe.options())
        .with_context(|| format!("importing into {}", a.out.display()))?;
    print_issues(&s.ingest.issues, &a.out);
    println!(
        "imported into {} in {:.1}s: {} new rows ({} images stored, {} URLs to fetch), {} already present, {} outside --genres",
        a.out.display(),
        t0.elapsed().as_secs_f64(),
        s.ingest.images + s.ingest.urls,
        s.ingest.images,
        s.ingest.urls,
        s.ingest.already_present,
        s.ingest.filtered
    );
    print_dedupe(&s.dedupe);
    print_dropped("genre selection", &s.selected_away);
    println!(
        "{} problems reported (rows/files skipped; all in {ISSUES_FILE}); manifest now {} rows, {} with images",
        s.ingest.issues.len(),
        s.rows,
        s.images
    );
    if s.ingest.urls > 0 {
        println!("next: sleeve dataset fetch --data {}", a.out.display());
    }
    Ok(())
}

fn print_issues(issues: &[Issue], dir: &std::path::Path) {
    const SHOW: usize = 30;
    for i in issues.iter().take(SHOW) {
        tracing::warn!("{i}");
    }
    if issues.len() > SHOW {
        tracing::warn!(
            "… and {} more problems: see {}",
            issues.len() - SHOW,
            dir.join(ISSUES_FILE).display()
        );
    }
}

fn print_dedupe(d: &DedupeReport) {
    println!(
        "dedupe: {} exact duplicates removed, {} near-duplicate groups kept together, {} near duplicates removed, {} rows removed for appearing under several genres",
        d.exact_removed, d.near_groups, d.near_removed, d.cross_genre_removed
    );
    for c in d.conflicts.iter().take(20) {
        println!("  cross-genre: {c}");
    }
    if d.conflicts.len() > 20 {
        println!("  … {} more (see dropped.csv)", d.conflicts.len() - 20);
    }
}

fn print_dropped(what: &str, rows: &[DroppedRow]) {
    if rows.is_empty() {
        return;
    }
    let mut by_reason: std::collections::BTreeMap<&str, usize> = Default::default();
    for r in rows {
        *by_reason.entry(r.reason.as_str()).or_insert(0) += 1;
    }
    println!("{what}: {} rows removed", rows.len());
    for (reason, n) in by_reason {
        println!("  {n:>6}  {reason}");
    }
}

fn fetch(a: FetchArgs) -> anyhow::Result<()> {
    if a.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    // Ctrl-C: finish the downloads in flight, save, exit.
    let stop = sleeve_shared::stop::ctrl_c("interrupted: finishing downloads in flight and saving");
    let opts = FetchOptions {
        concurrency: a.concurrency,
        timeout: a.timeout,
        retries: a.retries,
        max_bytes: a.max_bytes,
        retry_failed: !a.skip_failed,
        ..Default::default()
    };
    let t0 = Instant::now();
    let (r, d) = pipeline::fetch_into(&a.data, &opts, a.dedupe.options(), &stop)
        .with_context(|| format!("fetching into {}", a.data.display()))?;
    let failed: usize = r.failed.values().sum();
    println!(
        "fetch {} in {:.1}s: {} to download, {} ok, {} failed, {} already done, {} earlier failures skipped",
        a.data.display(),
        t0.elapsed().as_secs_f64(),
        r.todo,
        r.ok,
        failed,
        r.already_done,
        r.skipped_failed
    );
    for (reason, n) in &r.failed {
        println!("  failed {n:>6}  {reason}");
    }
    print_dedupe(&d);
    if r.interrupted {
        // Everything done so far is saved; the non-zero status tells scripts it is not
        // complete (130 = interrupted by SIGINT, as shells report it).
        println!("interrupted: re-run the same command to continue");
        std::process::exit(130);
    } else if failed > 0 {
        println!("re-run to retry the failures (or --skip-failed to leave them)");
    }
    Ok(())
}

fn dedupe(a: DedupeArgs) -> anyhow::Result<()> {
    let d = pipeline::dedupe_dataset(&a.data, a.dedupe.options())
        .with_context(|| format!("deduplicating {}", a.data.display()))?;
    print_dedupe(&d);
    println!("run `sleeve dataset split` again if the dataset was already split");
    Ok(())
}

fn split(a: SplitArgs) -> anyhow::Result<()> {
    let cfg = SplitConfig {
        val: a.val,
        test: a.test,
        seed: a.seed,
    };
    let dropped = pipeline::split_dataset(&a.data, &cfg, &a.select.selection())
        .with_context(|| format!("splitting {}", a.data.display()))?;
    print_dropped("genre selection", &dropped);
    let ds = Dataset::open(&a.data)?;
    let st = stats::compute(&ds, false)?;
    println!(
        "split {} (val {}, test {}, seed {}):",
        a.data.display(),
        a.val,
        a.test,
        a.seed
    );
    print!("{}", stats::render_text(&st));
    Ok(())
}

fn stats_cmd(a: StatsArgs) -> anyhow::Result<()> {
    let ds = Dataset::open(&a.data).with_context(|| format!("opening {}", a.data.display()))?;
    let st = stats::compute(&ds, !a.quick)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&st)?);
    } else {
        print!("{}", stats::render_text(&st));
    }
    if let Some(p) = &a.plot {
        stats::plot(&st, p)?;
        if !a.json {
            println!("plot written to {}", p.display());
        }
    }
    Ok(())
}

/// [`parse_duration`] limited to 1 ms – 1 h, for network time limits.
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(1) || d > Duration::from_secs(3600) {
        return Err(format!("timeout '{}' is outside 1ms to 1h", s.trim()));
    }
    Ok(d)
}

/// Parses `10MB`, `512KB`, `1GiB` or plain bytes (KB/MB/GB are powers of 1000, KiB/MiB/GiB
/// of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a size (e.g. 10MB)"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        u => {
            return Err(format!(
                "unknown size unit '{u}' (use B, KB, MB, GB, KiB, MiB, GiB)"
            ));
        }
    };
    let bytes = v * mult;
    if !(bytes.is_finite() && bytes >= 1.0) {
        return Err(format!("size '{s}' must be at least one byte"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes() {
        // The duration grammar itself is tested in `sleeve_shared::duration`.
        // Issue 18 (10): a huge value is an error, not a panic.
        assert!(parse_timeout("1000000000000000000000s").is_err());
        assert!(
            parse_timeout("2h")
                .unwrap_err()
                .contains("outside 1ms to 1h")
        );
        assert_eq!(parse_timeout("20s").unwrap(), Duration::from_secs(20));
        assert_eq!(parse_size("10MB").unwrap(), 10_000_000);
        assert_eq!(parse_size("1KiB").unwrap(), 1024);
        assert_eq!(parse_size("123").unwrap(), 123);
        assert!(parse_size("10 parsecs").is_err());
    }
}
