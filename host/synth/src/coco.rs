//! COCO-format annotations for the Parental Advisory data: `images`, `annotations`
//! (`bbox = [x, y, w, h]` in pixels) and `categories` (`1 = parental_advisory`), plus a few
//! optional extra fields (genre, label style) that COCO readers ignore.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sleeve_shared::detect::BoxF;
use sleeve_shared::fsutil::write_atomic;

use crate::error::SynthError;

/// The category id of the Parental Advisory label.
pub const PA_CATEGORY_ID: u64 = 1;
/// The category name of the Parental Advisory label.
pub const PA_CATEGORY_NAME: &str = "parental_advisory";

/// A COCO data set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Coco {
    /// Free-form description of how the set was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<serde_json::Value>,
    /// The images.
    pub images: Vec<CocoImage>,
    /// The boxes (any number per image, none for negatives).
    #[serde(default)]
    pub annotations: Vec<CocoAnnotation>,
    /// The categories (Sleeve uses exactly one).
    #[serde(default)]
    pub categories: Vec<CocoCategory>,
}

/// One image record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CocoImage {
    /// Unique id.
    pub id: u64,
    /// Path relative to the JSON file's folder.
    pub file_name: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Canonical genre of the cover, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub genre: Option<String>,
    /// The cover the image was made from (path or `procedural:<genre>`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Look-alike boxes (hard negatives) drawn on the image, `[x, y, w, h]` pixels. Not
    /// labels: a detector must NOT fire on them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub distractors: Vec<[f32; 4]>,
}

/// One labelled box.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CocoAnnotation {
    /// Unique id.
    pub id: u64,
    /// The image it belongs to.
    pub image_id: u64,
    /// Always [`PA_CATEGORY_ID`] in Sleeve data.
    pub category_id: u64,
    /// `[x, y, w, h]` in pixels, top-left origin.
    pub bbox: [f32; 4],
    /// `w * h`.
    pub area: f32,
    /// COCO crowd flag (always 0 here).
    #[serde(default)]
    pub iscrowd: u8,
    /// Rotation of the label in degrees (clockwise), when synthetic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_deg: Option<f32>,
    /// Where on the cover the label sits (`bottom_right`, `top_left`, …), when synthetic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
    /// The printed design (`classic`, `lyrics`, `wide_bar`, `two_line`, `outline`), when
    /// synthetic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub design: Option<String>,
    /// True for the white-bands / black-middle variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inverted: Option<bool>,
    /// True when something covers part of the label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occluded: Option<bool>,
}

/// One category.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CocoCategory {
    /// Id referenced by annotations.
    pub id: u64,
    /// Name.
    pub name: String,
}

impl Coco {
    /// An empty set with Sleeve's single category.
    pub fn new_pa() -> Self {
        Self {
            info: None,
            images: Vec::new(),
            annotations: Vec::new(),
            categories: vec![CocoCategory {
                id: PA_CATEGORY_ID,
                name: PA_CATEGORY_NAME.to_string(),
            }],
        }
    }

    /// The annotations of image `image_id`, in file order.
    pub fn annotations_of(&self, image_id: u64) -> impl Iterator<Item = &CocoAnnotation> {
        self.annotations
            .iter()
            .filter(move |a| a.image_id == image_id)
    }

    /// Checks ids are unique, annotations point at existing images and categories, and
    /// boxes are finite, non-empty and inside their image (1 px tolerance).
    pub fn validate(&self) -> Result<(), String> {
        let mut ids = HashSet::new();
        for im in &self.images {
            if !ids.insert(im.id) {
                return Err(format!("image id {} appears twice", im.id));
            }
            if !sleeve_shared::manifest::is_safe_relative_path(&im.file_name) {
                return Err(format!(
                    "image {} file_name '{}' must be relative and stay inside the folder",
                    im.id, im.file_name
                ));
            }
        }
        let cats: HashSet<u64> = self.categories.iter().map(|c| c.id).collect();
        let mut ann_ids = HashSet::new();
        for a in &self.annotations {
            if !ann_ids.insert(a.id) {
                return Err(format!("annotation id {} appears twice", a.id));
            }
            let Some(im) = self.images.iter().find(|i| i.id == a.image_id) else {
                return Err(format!(
                    "annotation {} names missing image {}",
                    a.id, a.image_id
                ));
            };
            if !cats.contains(&a.category_id) {
                return Err(format!(
                    "annotation {} names missing category {}",
                    a.id, a.category_id
                ));
            }
            let [x, y, w, h] = a.bbox;
            if ![x, y, w, h].iter().all(|v| v.is_finite()) || w <= 0.0 || h <= 0.0 {
                return Err(format!(
                    "annotation {} has an empty or non-finite bbox {:?}",
                    a.id, a.bbox
                ));
            }
            if x < -1.0
                || y < -1.0
                || x + w > im.width as f32 + 1.0
                || y + h > im.height as f32 + 1.0
            {
                return Err(format!(
                    "annotation {} bbox {:?} lies outside its {}x{} image",
                    a.id, a.bbox, im.width, im.height
                ));
            }
        }
        Ok(())
    }
}

/// Reads and validates a COCO JSON file.
pub fn read_coco(path: &Path) -> Result<Coco, SynthError> {
    let bytes = std::fs::read(path).map_err(|source| SynthError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let coco: Coco = serde_json::from_slice(&bytes).map_err(|source| SynthError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    coco.validate().map_err(|reason| SynthError::BadCoco {
        path: path.to_path_buf(),
        reason,
    })?;
    Ok(coco)
}

/// Writes a COCO JSON file atomically (pretty-printed).
pub fn write_coco(path: &Path, coco: &Coco) -> Result<(), SynthError> {
    let bytes = serde_json::to_vec_pretty(coco).map_err(|source| SynthError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    write_atomic(path, &bytes).map_err(|source| SynthError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Pixel corner box → COCO `[x, y, w, h]`.
pub fn to_xywh(b: &BoxF) -> [f32; 4] {
    [b.x0, b.y0, b.width(), b.height()]
}

/// COCO `[x, y, w, h]` → pixel corner box.
pub fn from_xywh(b: [f32; 4]) -> BoxF {
    BoxF::new(b[0], b[1], b[0] + b[2], b[1] + b[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Coco {
        let mut c = Coco::new_pa();
        c.images.push(CocoImage {
            id: 1,
            file_name: "images/1.jpg".into(),
            width: 100,
            height: 100,
            genre: Some("rock".into()),
            source: None,
            distractors: vec![],
        });
        c.annotations.push(CocoAnnotation {
            id: 1,
            image_id: 1,
            category_id: 1,
            bbox: [10.0, 20.0, 30.0, 18.0],
            area: 540.0,
            iscrowd: 0,
            rotation_deg: Some(1.5),
            position: Some("bottom_left".into()),
            design: Some("classic".into()),
            inverted: Some(false),
            occluded: None,
        });
        c
    }

    #[test]
    fn round_trip_and_validation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        let c = sample();
        write_coco(&p, &c).unwrap();
        assert_eq!(read_coco(&p).unwrap(), c);

        let mut bad = c.clone();
        bad.annotations[0].bbox = [90.0, 90.0, 30.0, 30.0];
        write_coco(&p, &bad).unwrap();
        let err = read_coco(&p).unwrap_err().to_string();
        assert!(err.contains("outside"), "{err}");

        std::fs::write(&p, b"{\"images\": 3}").unwrap();
        assert!(matches!(read_coco(&p), Err(SynthError::Json { .. })));
    }

    /// Found by `scripts/fuzz.sh` (2026-12-05): the property took any `..` in a name for a
    /// parent reference; only a `..` component is one.
    #[test]
    fn dots_inside_a_file_name_are_a_name_not_a_parent() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        for (name, ok) in [
            ("..¡", true),
            ("a..b.jpg", true),
            ("../x.jpg", false),
            ("i/../x.jpg", false),
        ] {
            let mut c = sample();
            c.images[0].file_name = name.into();
            write_coco(&p, &c).unwrap();
            assert_eq!(read_coco(&p).is_ok(), ok, "{name}");
        }
    }

    #[test]
    fn xywh_conversions() {
        let b = BoxF::new(1.0, 2.0, 11.0, 7.0);
        assert_eq!(to_xywh(&b), [1.0, 2.0, 10.0, 5.0]);
        assert_eq!(from_xywh(to_xywh(&b)), b);
    }
}

/// Property-based fuzzing (issue 18) of COCO reading: damaged files never panic, errors
/// name the file, and accepted annotations lie inside their images.
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;
    use sleeve_testkit::fuzz::{config, hostile_json, replace_leaf};

    fn seed() -> serde_json::Value {
        serde_json::json!({
            "images": [
                {"id": 1, "file_name": "images/1.jpg", "width": 100, "height": 80},
                {"id": 2, "file_name": "images/2.jpg", "width": 50, "height": 50,
                 "distractors": [[1.0, 1.0, 5.0, 5.0]]}
            ],
            "annotations": [
                {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10.0, 20.0, 30.0, 18.0],
                 "area": 540.0, "iscrowd": 0}
            ],
            "categories": [{"id": 1, "name": "parental_advisory"}]
        })
    }

    proptest! {
        #![proptest_config(config(48))]

        #[test]
        fn coco_leaf_mutations(picks in prop::collection::vec((any::<prop::sample::Index>(), hostile_json()), 1..4)) {
            let mut v = seed();
            for (pick, value) in picks {
                if !replace_leaf(&mut v, &pick, value) {
                    break;
                }
            }
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("annotations.json");
            std::fs::write(&p, v.to_string()).unwrap();
            match read_coco(&p) {
                Ok(c) => {
                    for im in &c.images {
                        // a component `..` would leave the folder; `..¡` or `a..b.jpg` are names
                        prop_assert!(
                            !im.file_name.split(['/', '\\']).any(|c| c == ".."),
                            "{}",
                            im.file_name
                        );
                    }
                    for a in &c.annotations {
                        let im = c.images.iter().find(|i| i.id == a.image_id);
                        prop_assert!(im.is_some(), "annotation of a missing image accepted");
                        let b = from_xywh(a.bbox);
                        prop_assert!(b.x0.is_finite() && b.y1.is_finite());
                    }
                }
                Err(e) => prop_assert!(e.to_string().contains("annotations.json"), "{e}"),
            }
        }

        #[test]
        fn coco_arbitrary_text(text in ".{0,200}") {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("annotations.json");
            std::fs::write(&p, &text).unwrap();
            if let Err(e) = read_coco(&p) {
                prop_assert!(e.to_string().contains("annotations.json"), "{e}");
            }
        }
    }
}
