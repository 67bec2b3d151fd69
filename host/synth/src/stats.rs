//! Label statistics of a COCO set: how many labels, how big, where, how rotated — the
//! numbers that say whether the synthetic distribution is what we meant.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::coco::{Coco, PA_CATEGORY_ID};

/// Summary of a COCO set's labels.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LabelStats {
    /// Images.
    pub images: usize,
    /// Images with at least one label.
    pub images_with_label: usize,
    /// Images without a label.
    pub negatives: usize,
    /// Images carrying look-alike hard negatives.
    pub images_with_distractors: usize,
    /// Negatives that carry look-alikes.
    pub negatives_with_distractors: usize,
    /// Labels.
    pub labels: usize,
    /// Label width / image width: min, p10, median, p90, max.
    pub width_frac: [f32; 5],
    /// Label width fraction histogram, bins of 0.04 starting at 0 (`"0.04-0.08": n`).
    pub width_frac_hist: BTreeMap<String, usize>,
    /// Label box aspect (w/h): min, median, max.
    pub aspect: [f32; 3],
    /// Labels per position (`bottom_right`, …; `unknown` without the extra field).
    pub positions: BTreeMap<String, usize>,
    /// Rotation histogram in 1° bins (`"-1..0": n`).
    pub rotation_hist: BTreeMap<String, usize>,
    /// Rotation |deg|: median and max.
    pub rotation_abs: [f32; 2],
    /// Labels per printed design (`classic`, …; `unknown` without the extra field).
    pub designs: BTreeMap<String, usize>,
    /// Inverted (white-band) labels.
    pub inverted: usize,
    /// Partly occluded labels.
    pub occluded: usize,
    /// Images per genre, and how many of them carry a label: `genre -> [images, labelled]`.
    pub genres: BTreeMap<String, [usize; 2]>,
}

fn quantile(sorted: &[f32], q: f32) -> f32 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f32 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Computes [`LabelStats`] (only the PA category counts).
pub fn label_stats(coco: &Coco) -> LabelStats {
    let mut widths = Vec::new();
    let mut aspects = Vec::new();
    let mut rot_abs = Vec::new();
    let mut positions = BTreeMap::new();
    let mut rotation_hist = BTreeMap::new();
    let mut width_frac_hist = BTreeMap::new();
    let (mut inverted, mut occluded) = (0, 0);
    let mut designs = BTreeMap::new();
    let mut labelled = std::collections::HashSet::new();
    let dims: std::collections::HashMap<u64, (u32, u32)> = coco
        .images
        .iter()
        .map(|i| (i.id, (i.width, i.height)))
        .collect();
    for a in coco
        .annotations
        .iter()
        .filter(|a| a.category_id == PA_CATEGORY_ID)
    {
        labelled.insert(a.image_id);
        let w_img = dims.get(&a.image_id).map(|d| d.0).unwrap_or(1).max(1) as f32;
        let wf = a.bbox[2] / w_img;
        widths.push(wf);
        let bin = (wf / 0.04).floor() as i32;
        *width_frac_hist
            .entry(format!(
                "{:.2}-{:.2}",
                bin as f32 * 0.04,
                (bin + 1) as f32 * 0.04
            ))
            .or_insert(0) += 1;
        if a.bbox[3] > 0.0 {
            aspects.push(a.bbox[2] / a.bbox[3]);
        }
        *positions
            .entry(a.position.clone().unwrap_or_else(|| "unknown".into()))
            .or_insert(0) += 1;
        if let Some(r) = a.rotation_deg {
            let lo = r.floor() as i32;
            *rotation_hist
                .entry(format!("{lo:+}..{:+}", lo + 1))
                .or_insert(0) += 1;
            rot_abs.push(r.abs());
        }
        *designs
            .entry(a.design.clone().unwrap_or_else(|| "unknown".into()))
            .or_insert(0) += 1;
        inverted += usize::from(a.inverted == Some(true));
        occluded += usize::from(a.occluded == Some(true));
    }
    let sort = |v: &mut Vec<f32>| v.sort_by(|a, b| a.total_cmp(b));
    sort(&mut widths);
    sort(&mut aspects);
    sort(&mut rot_abs);
    let mut genres: BTreeMap<String, [usize; 2]> = BTreeMap::new();
    for im in &coco.images {
        let e = genres
            .entry(im.genre.clone().unwrap_or_else(|| "unknown".into()))
            .or_insert([0, 0]);
        e[0] += 1;
        e[1] += usize::from(labelled.contains(&im.id));
    }
    let with_d = coco
        .images
        .iter()
        .filter(|i| !i.distractors.is_empty())
        .count();
    let neg_with_d = coco
        .images
        .iter()
        .filter(|i| !i.distractors.is_empty() && !labelled.contains(&i.id))
        .count();
    LabelStats {
        images: coco.images.len(),
        images_with_label: labelled.len(),
        negatives: coco.images.len() - labelled.len(),
        images_with_distractors: with_d,
        negatives_with_distractors: neg_with_d,
        labels: widths.len(),
        width_frac: [
            quantile(&widths, 0.0),
            quantile(&widths, 0.1),
            quantile(&widths, 0.5),
            quantile(&widths, 0.9),
            quantile(&widths, 1.0),
        ],
        width_frac_hist,
        aspect: [
            quantile(&aspects, 0.0),
            quantile(&aspects, 0.5),
            quantile(&aspects, 1.0),
        ],
        positions,
        rotation_hist,
        rotation_abs: [quantile(&rot_abs, 0.5), quantile(&rot_abs, 1.0)],
        designs,
        inverted,
        occluded,
        genres,
    }
}
