//! The catalogue file: a store's own records, one or more descriptors each.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! magic        8 bytes   "SLVCATLG"
//! format       u32       CATALOGUE_FORMAT_VERSION
//! header_len   u32       length of the JSON header (at most 256 MiB)
//! header       JSON      CatalogueHeader: versions, dim, entries, SHA-256 of the vectors
//! vectors      i8 × rows × dim, rows = sum of the entries' `views`
//! trailer      32 bytes  SHA-256 of everything before it
//! ```
//!
//! A file is refused, naming the reason, when the magic, a version, a length or either
//! SHA-256 is wrong, or a number is out of range. Files are written atomically
//! ([`crate::fsutil::write_atomic`]), so a reader sees the old file or the new one.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::descriptor::{CELL_DIM, DESCRIPTOR_DIM, DESCRIPTOR_VERSION};
use super::index::Index;
use crate::preprocess::PREPROCESS_VERSION;

/// First bytes of a catalogue file.
pub const CATALOGUE_MAGIC: &[u8; 8] = b"SLVCATLG";
/// Version of the layout above.
pub const CATALOGUE_FORMAT_VERSION: u32 = 1;
/// Default file name, next to the bundle's `manifest.json`.
pub const CATALOGUE_FILE: &str = "catalogue.slvc";
/// Most entries a catalogue may hold.
pub const MAX_ENTRIES: usize = 2_000_000;
/// Most descriptors (views) per entry.
pub const MAX_VIEWS: u32 = 64;
const MAX_HEADER: usize = 256 << 20;
const MAX_TEXT: usize = 4096;

/// One record of the store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CatalogueEntry {
    /// Stable number, unique in the catalogue (`sleeve catalogue remove --id`).
    pub id: u64,
    /// Artist (may be empty).
    pub artist: String,
    /// Title (may be empty).
    pub title: String,
    /// The store's bin or genre (may be empty).
    pub bin: String,
    /// Further columns of the input, verbatim, in input order (price, SKU, ...).
    #[serde(default)]
    pub extra: Vec<(String, String)>,
    /// Where the cover image came from (path as given).
    pub source: String,
    /// SHA-256 of the cover image's bytes (exact-duplicate check).
    pub image_sha256: String,
    /// 64-bit perceptual hash of the cover, 16 hex digits (near-duplicate check).
    pub phash: String,
    /// Descriptors stored for this entry (1 + augmented views).
    pub views: u32,
}

impl CatalogueEntry {
    /// "Artist — Title", or whichever is present, or the source.
    pub fn display_name(&self) -> String {
        match (self.artist.is_empty(), self.title.is_empty()) {
            (false, false) => format!("{} - {}", self.artist, self.title),
            (false, true) => self.artist.clone(),
            (true, false) => self.title.clone(),
            (true, true) => self.source.clone(),
        }
    }
}

/// The JSON header of a catalogue file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CatalogueHeader {
    /// [`CATALOGUE_FORMAT_VERSION`].
    pub format_version: u32,
    /// [`DESCRIPTOR_VERSION`] the vectors were computed with.
    pub descriptor_version: u32,
    /// [`PREPROCESS_VERSION`] the vectors were computed with.
    pub preprocess_version: u32,
    /// Vector length ([`DESCRIPTOR_DIM`]).
    pub dim: u32,
    /// Time of the last write, seconds since the Unix epoch (informational).
    pub updated_unix: u64,
    /// Lower-case hex SHA-256 of the vector block.
    pub vectors_sha256: String,
    /// The records, in vector order.
    pub entries: Vec<CatalogueEntry>,
}

/// A catalogue in memory: entries and their int8 vectors.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Catalogue {
    /// The records, in vector order.
    pub entries: Vec<CatalogueEntry>,
    /// `sum(views) × DESCRIPTOR_DIM` values, entry by entry.
    pub vectors: Vec<i8>,
    /// Time of the last write, seconds since the Unix epoch (informational).
    pub updated_unix: u64,
}

/// Why a catalogue cannot be read or used.
#[derive(Debug)]
pub enum CatalogueError {
    /// The file cannot be read or written.
    Io(std::io::Error),
    /// The file is not an acceptable catalogue: truncated, corrupted, tampered with, or of
    /// another version.
    Refused(String),
}

impl std::fmt::Display for CatalogueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "{e}"),
            Self::Refused(why) => write!(f, "not a usable catalogue: {why}"),
        }
    }
}

impl std::error::Error for CatalogueError {}

fn refuse(why: impl Into<String>) -> CatalogueError {
    CatalogueError::Refused(why.into())
}

impl Catalogue {
    /// Total number of vectors.
    pub fn rows(&self) -> usize {
        self.vectors.len() / DESCRIPTOR_DIM
    }

    /// The next free entry id.
    pub fn next_id(&self) -> u64 {
        self.entries.iter().map(|e| e.id + 1).max().unwrap_or(1)
    }

    /// Appends an entry with its views (each [`DESCRIPTOR_DIM`] long); `entry.views` is
    /// set from `views`.
    pub fn push(
        &mut self,
        mut entry: CatalogueEntry,
        views: &[Vec<i8>],
    ) -> Result<(), CatalogueError> {
        if views.is_empty() || views.len() > MAX_VIEWS as usize {
            return Err(refuse(format!("{} views (1..={MAX_VIEWS})", views.len())));
        }
        if let Some(v) = views.iter().find(|v| v.len() != DESCRIPTOR_DIM) {
            return Err(refuse(format!(
                "descriptor of length {} (want {DESCRIPTOR_DIM})",
                v.len()
            )));
        }
        entry.views = views.len() as u32;
        self.entries.push(entry);
        for v in views {
            self.vectors.extend_from_slice(v);
        }
        Ok(())
    }

    /// Removes the entries for which `drop` is true, with their vectors; returns how many.
    pub fn remove_where(&mut self, mut drop: impl FnMut(&CatalogueEntry) -> bool) -> usize {
        let mut entries = Vec::with_capacity(self.entries.len());
        let mut vectors = Vec::with_capacity(self.vectors.len());
        let mut at = 0;
        let mut removed = 0;
        for e in self.entries.drain(..) {
            let len = e.views as usize * DESCRIPTOR_DIM;
            if drop(&e) {
                removed += 1;
            } else {
                vectors.extend_from_slice(&self.vectors[at..at + len]);
                entries.push(e);
            }
            at += len;
        }
        self.entries = entries;
        self.vectors = vectors;
        removed
    }

    /// The search index over all views.
    pub fn index(&self) -> Index {
        let owner = self
            .entries
            .iter()
            .enumerate()
            .flat_map(|(i, e)| std::iter::repeat_n(i as u32, e.views as usize))
            .collect();
        // Shapes are checked when a catalogue is built or read.
        Index::new(DESCRIPTOR_DIM, CELL_DIM, self.vectors.clone(), owner).unwrap_or_default()
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let vbytes: Vec<u8> = self.vectors.iter().map(|v| *v as u8).collect();
        let header = CatalogueHeader {
            format_version: CATALOGUE_FORMAT_VERSION,
            descriptor_version: DESCRIPTOR_VERSION,
            preprocess_version: PREPROCESS_VERSION,
            dim: DESCRIPTOR_DIM as u32,
            updated_unix: self.updated_unix,
            vectors_sha256: hex::encode(Sha256::digest(&vbytes)),
            entries: self.entries.clone(),
        };
        // Serialising plain strings and numbers cannot fail.
        let json = serde_json::to_vec(&header).unwrap_or_default();
        let mut out = Vec::with_capacity(16 + json.len() + vbytes.len() + 32);
        out.extend_from_slice(CATALOGUE_MAGIC);
        out.extend_from_slice(&CATALOGUE_FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(json.len() as u32).to_le_bytes());
        out.extend_from_slice(&json);
        out.extend_from_slice(&vbytes);
        let sum = Sha256::digest(&out);
        out.extend_from_slice(&sum);
        out
    }

    /// Parses and checks a catalogue file's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CatalogueError> {
        if bytes.len() < 16 + 32 || &bytes[..8] != CATALOGUE_MAGIC {
            return Err(refuse("no catalogue signature (SLVCATLG) at the start"));
        }
        let (body, trailer) = bytes.split_at(bytes.len() - 32);
        if Sha256::digest(body).as_slice() != trailer {
            return Err(refuse(
                "SHA-256 check failed: the file is truncated, corrupted or was modified",
            ));
        }
        let format = u32::from_le_bytes([body[8], body[9], body[10], body[11]]);
        if format != CATALOGUE_FORMAT_VERSION {
            return Err(refuse(format!(
                "format version {format} (this build reads {CATALOGUE_FORMAT_VERSION})"
            )));
        }
        let hlen = u32::from_le_bytes([body[12], body[13], body[14], body[15]]) as usize;
        if hlen > MAX_HEADER || 16 + hlen > body.len() {
            return Err(refuse(format!(
                "header length {hlen} does not fit the file"
            )));
        }
        let header: CatalogueHeader = serde_json::from_slice(&body[16..16 + hlen])
            .map_err(|e| refuse(format!("header is not valid: {e}")))?;
        if header.format_version != CATALOGUE_FORMAT_VERSION {
            return Err(refuse("header and file disagree on the format version"));
        }
        if header.descriptor_version != DESCRIPTOR_VERSION {
            return Err(refuse(format!(
                "descriptor version {} (this build computes {DESCRIPTOR_VERSION}): rebuild the catalogue",
                header.descriptor_version
            )));
        }
        if header.preprocess_version != PREPROCESS_VERSION {
            return Err(refuse(format!(
                "preprocessing version {} (this build implements {PREPROCESS_VERSION}): rebuild the catalogue",
                header.preprocess_version
            )));
        }
        if header.dim as usize != DESCRIPTOR_DIM {
            return Err(refuse(format!(
                "vector length {} (want {DESCRIPTOR_DIM})",
                header.dim
            )));
        }
        if header.entries.len() > MAX_ENTRIES {
            return Err(refuse(format!(
                "{} entries (at most {MAX_ENTRIES})",
                header.entries.len()
            )));
        }
        let mut rows = 0usize;
        let mut ids = std::collections::HashSet::new();
        for (i, e) in header.entries.iter().enumerate() {
            if e.views == 0 || e.views > MAX_VIEWS {
                return Err(refuse(format!(
                    "entry {i}: {} views (1..={MAX_VIEWS})",
                    e.views
                )));
            }
            if !ids.insert(e.id) {
                return Err(refuse(format!("entry {i}: id {} is used twice", e.id)));
            }
            let texts = [&e.artist, &e.title, &e.bin, &e.source];
            if texts.iter().any(|t| t.len() > MAX_TEXT)
                || e.extra
                    .iter()
                    .any(|(k, v)| k.len() > MAX_TEXT || v.len() > MAX_TEXT)
            {
                return Err(refuse(format!(
                    "entry {i}: a text field is over {MAX_TEXT} bytes"
                )));
            }
            rows += e.views as usize;
        }
        let vbytes = &body[16 + hlen..];
        if vbytes.len() != rows * DESCRIPTOR_DIM {
            return Err(refuse(format!(
                "{} vector bytes for {rows} views of {DESCRIPTOR_DIM}",
                vbytes.len()
            )));
        }
        if hex::encode(Sha256::digest(vbytes)) != header.vectors_sha256 {
            return Err(refuse(
                "vector block does not match its SHA-256 in the header",
            ));
        }
        Ok(Self {
            entries: header.entries,
            vectors: vbytes.iter().map(|b| *b as i8).collect(),
            updated_unix: header.updated_unix,
        })
    }

    /// Reads and checks a catalogue file.
    pub fn read(path: &Path) -> Result<Self, CatalogueError> {
        let bytes = std::fs::read(path).map_err(CatalogueError::Io)?;
        Self::from_bytes(&bytes)
    }

    /// Writes the catalogue atomically.
    pub fn write(&self, path: &Path) -> Result<(), CatalogueError> {
        crate::fsutil::write_atomic(path, &self.to_bytes()).map_err(CatalogueError::Io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64, title: &str) -> CatalogueEntry {
        CatalogueEntry {
            id,
            artist: "Artist".into(),
            title: title.into(),
            bin: "rock".into(),
            extra: vec![
                ("price".into(), "12.50".into()),
                ("sku".into(), "A-1".into()),
            ],
            source: format!("{title}.jpg"),
            image_sha256: "00".repeat(32),
            phash: "0123456789abcdef".into(),
            views: 0,
        }
    }

    fn sample() -> Catalogue {
        let mut c = Catalogue::default();
        let v = |k: i8| vec![k; DESCRIPTOR_DIM];
        c.push(entry(1, "One"), &[v(1), v(2)]).unwrap();
        c.push(entry(2, "Two"), &[v(-3)]).unwrap();
        c.push(entry(5, "Five"), &[v(4)]).unwrap();
        c
    }

    #[test]
    fn round_trip_and_remove() {
        let mut c = sample();
        let back = Catalogue::from_bytes(&c.to_bytes()).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.rows(), 4);
        assert_eq!(back.next_id(), 6);
        assert_eq!(c.remove_where(|e| e.id == 2), 1);
        assert_eq!(c.entries.len(), 2);
        assert_eq!(
            c.vectors[2 * DESCRIPTOR_DIM],
            4,
            "entry 5's vector follows entry 1's"
        );
        assert_eq!(c.index().rows(), 3);
    }

    #[test]
    fn damaged_files_are_refused() {
        let bytes = sample().to_bytes();
        let msg = |b: &[u8]| Catalogue::from_bytes(b).unwrap_err().to_string();
        // One flipped bit in the vectors, the header, or the trailer.
        for at in [bytes.len() - 40, 30, bytes.len() - 1] {
            let mut b = bytes.clone();
            b[at] ^= 1;
            assert!(msg(&b).contains("SHA-256"), "{}", msg(&b));
        }
        assert!(msg(&bytes[..bytes.len() - 10]).contains("SHA-256"));
        assert!(
            msg(b"not a catalogue at all, just text....................").contains("signature")
        );
        // A tampered header with a recomputed trailer still fails the vector hash.
        let mut c = sample();
        c.vectors[0] = 99;
        let mut forged = c.to_bytes();
        let good = sample().to_bytes();
        let hlen = u32::from_le_bytes(good[12..16].try_into().unwrap()) as usize;
        forged[16..16 + hlen].copy_from_slice(&good[16..16 + hlen]);
        let n = forged.len() - 32;
        let sum = Sha256::digest(&forged[..n]);
        forged[n..].copy_from_slice(&sum);
        assert!(
            msg(&forged).contains("does not match its SHA-256"),
            "{}",
            msg(&forged)
        );
    }

    #[test]
    fn bad_pushes_are_errors() {
        let mut c = Catalogue::default();
        assert!(c.push(entry(1, "x"), &[]).is_err());
        assert!(c.push(entry(1, "x"), &[vec![0; 3]]).is_err());
        assert!(c.entries.is_empty());
    }
}
