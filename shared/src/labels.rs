//! Genre label sets and genre-name normalisation.
//!
//! A [`LabelSet`] is the ordered list of class names a classifier was trained on; index `i`
//! of the model output is `names[i]`. Genre names are stored in a canonical form
//! ([`canonical_genre`]) so that "Hip-Hop/Rap", "hip hop" and "HipHop" are one class.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// The five genres of the development data set (`covers5`), in model-output order.
pub const COVERS5: [&str; 5] = ["country", "electronic", "hiphop", "pop", "rock"];

/// Aliases folded onto one canonical genre name (after lower-casing and stripping
/// everything but ASCII letters and digits).
const ALIASES: &[(&str, &str)] = &[
    ("hiphoprap", "hiphop"),
    ("rap", "hiphop"),
    ("rnbsoul", "rnb"),
    ("randb", "rnb"),
    ("rbsoul", "rnb"),
    ("electronica", "electronic"),
    ("electronicmusic", "electronic"),
    ("poprock", "pop"),
    ("hardrock", "rock"),
    ("rockandroll", "rock"),
    ("rocknroll", "rock"),
];

/// Canonical form of a genre name: ASCII-lower-case letters and digits only, with common
/// aliases folded (`"Hip-Hop/Rap"` → `"hiphop"`). Returns an empty string when nothing is
/// left, which callers treat as "no genre".
pub fn canonical_genre(name: &str) -> String {
    let folded: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '&')
        .map(|c| {
            if c == '&' {
                'n'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    for (alias, canon) in ALIASES {
        if folded == *alias {
            return canon.to_string();
        }
    }
    folded
}

/// An ordered set of class names: model output `i` means `names[i]`. Deserialising goes
/// through [`LabelSet::new`], so a file with blank or duplicate names is refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawLabelSet")]
pub struct LabelSet {
    names: Vec<String>,
}

/// A label set as written in a file, before checking.
#[derive(Deserialize)]
struct RawLabelSet {
    names: Vec<String>,
}

impl TryFrom<RawLabelSet> for LabelSet {
    type Error = LabelSetError;

    fn try_from(raw: RawLabelSet) -> Result<Self, Self::Error> {
        Self::new(&raw.names)
    }
}

/// Why a list of names is not a valid [`LabelSet`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelSetError {
    /// No names at all.
    Empty,
    /// A name is empty after canonicalisation.
    BlankName(usize),
    /// Two entries canonicalise to the same name.
    Duplicate(String),
}

impl core::fmt::Display for LabelSetError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Empty => write!(f, "a label set needs at least one genre"),
            Self::BlankName(i) => write!(f, "genre #{i} is blank"),
            Self::Duplicate(n) => write!(f, "genre '{n}' is listed twice"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for LabelSetError {}

impl LabelSet {
    /// Builds a label set from names, canonicalising each and rejecting blanks and
    /// duplicates. Order is kept: it is the model's output order.
    pub fn new<S: AsRef<str>>(names: &[S]) -> Result<Self, LabelSetError> {
        if names.is_empty() {
            return Err(LabelSetError::Empty);
        }
        let mut out: Vec<String> = Vec::with_capacity(names.len());
        for (i, n) in names.iter().enumerate() {
            let c = canonical_genre(n.as_ref());
            if c.is_empty() {
                return Err(LabelSetError::BlankName(i));
            }
            if out.contains(&c) {
                return Err(LabelSetError::Duplicate(c));
            }
            out.push(c);
        }
        Ok(Self { names: out })
    }

    /// The `covers5` development label set.
    pub fn covers5() -> Self {
        Self::new(&COVERS5).expect("COVERS5 is a valid label set")
    }

    /// Number of classes.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Always false: a label set has at least one class.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Class names in output order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Name of class `i`, if it exists.
    pub fn name(&self, i: usize) -> Option<&str> {
        self.names.get(i).map(String::as_str)
    }

    /// Index of a genre (any spelling that canonicalises to a member).
    pub fn index_of(&self, genre: &str) -> Option<usize> {
        let c = canonical_genre(genre);
        self.names.iter().position(|n| *n == c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_folds_spelling_and_aliases() {
        assert_eq!(canonical_genre("Hip-Hop/Rap"), "hiphop");
        assert_eq!(canonical_genre("hip hop"), "hiphop");
        assert_eq!(canonical_genre("R&B/Soul"), "rnb");
        assert_eq!(canonical_genre("  Rock "), "rock");
        assert_eq!(canonical_genre("Electronica"), "electronic");
        assert_eq!(canonical_genre("--"), "");
    }

    #[test]
    fn label_set_rejects_bad_lists() {
        assert_eq!(LabelSet::new::<&str>(&[]), Err(LabelSetError::Empty));
        assert_eq!(
            LabelSet::new(&["rock", " "]),
            Err(LabelSetError::BlankName(1))
        );
        assert_eq!(
            LabelSet::new(&["Rap", "hiphop"]),
            Err(LabelSetError::Duplicate("hiphop".into()))
        );
    }

    #[test]
    fn deserialising_checks_the_names() {
        let ok: LabelSet = serde_json::from_str(r#"{"names": ["rock", "Pop"]}"#).unwrap();
        assert_eq!(ok.names(), ["rock", "pop"]);
        let dup = serde_json::from_str::<LabelSet>(r#"{"names": ["rock", "Rock"]}"#);
        assert!(dup.unwrap_err().to_string().contains("listed twice"));
        let blank = serde_json::from_str::<LabelSet>(r#"{"names": ["rock", " "]}"#);
        assert!(blank.unwrap_err().to_string().contains("blank"));
        assert!(serde_json::from_str::<LabelSet>(r#"{"names": []}"#).is_err());
    }

    #[test]
    fn label_set_indexes_by_any_spelling() {
        let l = LabelSet::covers5();
        assert_eq!(l.len(), 5);
        assert_eq!(l.index_of("Hip-Hop"), Some(2));
        assert_eq!(l.name(4), Some("rock"));
        assert_eq!(l.index_of("jazz"), None);
    }
}
