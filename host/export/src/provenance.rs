//! Provenance of a bundle: source commit, command lines, UTC time.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use sleeve_shared::manifest::Provenance;

/// `git rev-parse HEAD` (with `-dirty` when the work tree has changes), or `"unknown"`.
pub fn git_commit() -> String {
    let out = Command::new("git").args(["rev-parse", "HEAD"]).output();
    let Some(out) = out.ok().filter(|o| o.status.success()) else {
        return "unknown".into();
    };
    let mut commit = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    if dirty {
        commit.push_str("-dirty");
    }
    commit
}

/// RFC 3339 UTC timestamp of a Unix time (seconds).
pub fn rfc3339(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let rem = unix_secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Provenance for a bundle made now by this process: `data` and `seed` describe training,
/// `commands` are the commands that trained the models (this process's command line is
/// appended).
pub fn collect(data: &str, seed: u64, commands: &[String]) -> Provenance {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut commands = commands.to_vec();
    commands.push(std::env::args().collect::<Vec<_>>().join(" "));
    Provenance {
        data: data.into(),
        seed,
        commit: git_commit(),
        commands,
        created_utc: rfc3339(now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_417_201), "2026-11-23T07:00:01Z");
    }
}
