//! File helpers both binaries use: atomic writes and SHA-256 of files.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::manifest::ModelFile;

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync,
/// then rename. A crash or full disk leaves either the old file or the new one, never a
/// torn one; the temporary file is removed on error.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |f| f.write_all(bytes))
}

/// Like [`write_atomic`], with the content produced by `fill` writing into the temp file.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        fill(&mut f)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Sibling working directories of `dir` left by [`replace_dir`]: `.NAME.new.PID` (being
/// built) and `.NAME.old.PID` (swapped out, being removed).
fn sibling(dir: &Path, kind: &str, pid: u32) -> io::Result<std::path::PathBuf> {
    let name = dir
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    Ok(parent_of(dir).join(format!(".{}.{kind}.{pid}", name.to_string_lossy())))
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Removes `.NAME.new.PID` / `.NAME.old.PID` siblings of `dir` whose process is gone (a
/// run killed mid-way). Returns how many were removed.
pub fn remove_stale_siblings(dir: &Path) -> io::Result<usize> {
    let Some(name) = dir.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Ok(0);
    };
    let parent = parent_of(dir);
    let Ok(entries) = fs::read_dir(parent) else {
        return Ok(0);
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        let pid = [".new.", ".old."].iter().find_map(|k| {
            file.strip_prefix(&format!(".{name}{k}"))
                .and_then(|p| p.parse::<u32>().ok())
        });
        let Some(pid) = pid else { continue };
        let alive = pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists();
        if !alive {
            fs::remove_dir_all(e.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Swaps `a` and `b` atomically (Linux `RENAME_EXCHANGE`); false where unsupported.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> io::Result<bool> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(true),
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> io::Result<bool> {
    Ok(false)
}

/// Replaces directory `dir` as a whole: `fill` writes the new content into an empty
/// sibling directory (`.NAME.new.PID`), which is then swapped in with one atomic rename
/// (`RENAME_EXCHANGE` on Linux; elsewhere two renames). A reader sees the old directory or
/// the new one, never a mix; a crash or a failing `fill` leaves the old one intact, and
/// leftovers of killed runs are removed by the next call. Nothing of the old content is
/// kept: callers check that `dir` holds only what they are replacing.
pub fn replace_dir<T, E: From<io::Error>>(
    dir: &Path,
    fill: impl FnOnce(&Path) -> Result<T, E>,
) -> Result<T, E> {
    fs::create_dir_all(parent_of(dir))?;
    remove_stale_siblings(dir)?;
    let pid = std::process::id();
    let staging = sibling(dir, "new", pid)?;
    if staging.exists() {
        fs::remove_dir_all(&staging)?;
    }
    fs::create_dir(&staging)?;
    let value = match fill(&staging) {
        Ok(v) => v,
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let swap = || -> io::Result<()> {
        File::open(&staging)?.sync_all()?;
        if fs::symlink_metadata(dir).is_err() {
            fs::rename(&staging, dir)?;
        } else if exchange(&staging, dir)? {
            fs::remove_dir_all(&staging)?;
        } else {
            let old = sibling(dir, "old", pid)?;
            fs::rename(dir, &old)?;
            fs::rename(&staging, dir)?;
            fs::remove_dir_all(&old)?;
        }
        File::open(parent_of(dir))?.sync_all()
    };
    if let Err(e) = swap() {
        let _ = fs::remove_dir_all(&staging);
        return Err(e.into());
    }
    Ok(value)
}

/// True for a temporary file of [`write_atomic`] (`.NAME.tmp.PID`) whose process is no
/// longer running: the leftover of a run killed mid-write, safe to delete.
pub fn is_stale_temp_file(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.') else {
        return false;
    };
    let Some((_, pid)) = rest.rsplit_once(".tmp.") else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
}

/// Lower-case hex SHA-256 of a byte slice.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Lower-case hex SHA-256 of a file, streamed.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Why a bundle file does not match its manifest entry.
#[derive(Debug)]
pub enum FileMismatch {
    /// The file cannot be opened or read.
    Unreadable {
        /// Path relative to the bundle.
        path: String,
        /// The I/O error.
        error: io::Error,
    },
    /// Its size differs from the manifest's.
    Size {
        /// Path relative to the bundle.
        path: String,
        /// Size on disk.
        have: u64,
        /// Size in the manifest.
        want: u64,
    },
    /// Its SHA-256 differs from the manifest's.
    Hash {
        /// Path relative to the bundle.
        path: String,
        /// SHA-256 of the file on disk.
        have: String,
        /// SHA-256 in the manifest.
        want: String,
    },
}

impl std::fmt::Display for FileMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreadable { path, error } if error.kind() == io::ErrorKind::NotFound => {
                write!(f, "{path} is missing (it cannot be read: {error})")
            }
            Self::Unreadable { path, error } => write!(f, "{path} cannot be read: {error}"),
            Self::Size { path, have, want } => {
                write!(f, "{path} has {have} bytes, the manifest says {want}")
            }
            Self::Hash { path, have, want } => write!(
                f,
                "{path}: SHA-256 mismatch (manifest {want}, file {have}): it was modified or corrupted"
            ),
        }
    }
}

impl std::error::Error for FileMismatch {}

/// Checks a bundle file against its manifest entry: size first (cheap), then SHA-256.
pub fn verify_model_file(dir: &Path, file: &ModelFile) -> Result<(), FileMismatch> {
    let path = dir.join(&file.path);
    let unreadable = |error| FileMismatch::Unreadable {
        path: file.path.clone(),
        error,
    };
    let have = std::fs::metadata(&path).map_err(unreadable)?.len();
    if have != file.bytes {
        return Err(FileMismatch::Size {
            path: file.path.clone(),
            have,
            want: file.bytes,
        });
    }
    let hash = sha256_file(&path).map_err(unreadable)?;
    if hash != file.sha256 {
        return Err(FileMismatch::Hash {
            path: file.path.clone(),
            have: hash,
            want: file.sha256.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/x.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let err = write_atomic_with(&p, |_| Err(io::Error::other("disk full")));
        assert!(err.is_err());
        assert_eq!(
            fs::read(&p).unwrap(),
            b"two",
            "old content survives a failed write"
        );
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("sub")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temp file removed");
    }

    #[test]
    fn replace_dir_swaps_whole_and_keeps_old_on_failure() {
        let root = tempfile::tempdir().unwrap();
        let d = root.path().join("out");
        replace_dir::<_, io::Error>(&d, |s| {
            fs::write(s.join("a"), b"1")?;
            fs::write(s.join("b"), b"1")
        })
        .unwrap();
        // The new content replaces the old as a whole: `b` does not survive.
        replace_dir::<_, io::Error>(&d, |s| fs::write(s.join("a"), b"2")).unwrap();
        let names: Vec<_> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a"]);
        assert_eq!(fs::read(d.join("a")).unwrap(), b"2");
        // A failing fill leaves the old directory and no staging folder.
        let err = replace_dir::<(), io::Error>(&d, |s| {
            fs::write(s.join("a"), b"3")?;
            Err(io::Error::other("disk full"))
        });
        assert!(err.is_err());
        assert_eq!(fs::read(d.join("a")).unwrap(), b"2");
        assert_eq!(
            fs::read_dir(root.path()).unwrap().count(),
            1,
            "no leftovers"
        );
        // A leftover of a killed run (a pid that is not running) is cleaned up.
        let stale = root.path().join(format!(".out.new.{}", u32::MAX - 1));
        fs::create_dir(&stale).unwrap();
        replace_dir::<_, io::Error>(&d, |s| fs::write(s.join("a"), b"4")).unwrap();
        assert!(!stale.exists());
        assert_eq!(fs::read(d.join("a")).unwrap(), b"4");
    }

    #[test]
    fn stale_temp_files_are_recognised() {
        let dead = u32::MAX - 1;
        assert!(is_stale_temp_file(&format!(".ab.png.tmp.{dead}")));
        assert!(!is_stale_temp_file(&format!(
            ".ab.png.tmp.{}",
            std::process::id()
        )));
        assert!(!is_stale_temp_file("ab.png"));
        assert!(!is_stale_temp_file(".ab.tmp.x"));
    }

    #[test]
    fn sha256_known_value() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        fs::write(&p, b"abc").unwrap();
        assert_eq!(sha256_file(&p).unwrap(), sha256_hex(b"abc"));
    }

    #[test]
    fn model_files_are_checked_by_size_then_hash() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.onnx"), b"abcd").unwrap();
        let mut f = ModelFile {
            precision: crate::manifest::Precision::F32,
            path: "m.onnx".into(),
            sha256: sha256_hex(b"abcd"),
            bytes: 4,
        };
        verify_model_file(dir.path(), &f).unwrap();
        std::fs::write(dir.path().join("m.onnx"), b"abce").unwrap();
        let e = verify_model_file(dir.path(), &f).unwrap_err();
        assert!(matches!(e, FileMismatch::Hash { .. }), "{e}");
        assert!(e.to_string().contains("SHA-256 mismatch") && e.to_string().contains("m.onnx"));
        f.bytes = 5;
        assert!(matches!(
            verify_model_file(dir.path(), &f),
            Err(FileMismatch::Size {
                have: 4,
                want: 5,
                ..
            })
        ));
        f.path = "missing.onnx".into();
        let e = verify_model_file(dir.path(), &f).unwrap_err();
        assert!(matches!(e, FileMismatch::Unreadable { .. }), "{e}");
        assert!(e.to_string().contains("missing.onnx is missing"), "{e}");
    }
}
