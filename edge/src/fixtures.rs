//! Tiny, deterministic model bundles and camera-like scenes for tests and demos.
//!
//! Nothing here is trained: the "classifier" is a nearest-colour-prototype rule written as
//! an ONNX graph (GlobalAveragePool → Flatten → Gemm), and the "detector" fires on dark
//! regions (strided Conv → Transpose → Reshape), so tests can predict the right answer for
//! an image they drew themselves.

use std::collections::BTreeMap;
use std::path::Path;

use image::{Rgb, RgbImage};
use imageproc::geometric_transformations::{Border, Interpolation, Projection, warp_into};
use prost::Message;
use sleeve_shared::calibration::ClassifierCalibration;
use sleeve_shared::detect::{AnchorConfig, DecodeParams};
use sleeve_shared::fsutil::{sha256_hex, write_atomic};
use sleeve_shared::fusion::FusionParams;
use sleeve_shared::manifest::{
    BUNDLE_FORMAT_VERSION, BundleManifest, DetectorEntry, JointEntry, MANIFEST_FILE, ModelEntry,
    ModelFile, Precision, Provenance, SharedPrefix,
};
use sleeve_shared::{LabelSet, PreprocessConfig};
use tract_onnx::pb;

use crate::plan::attr_ints;

/// Prototype colours (RGB8) of the tiny classifier's classes, in label order; class `i` of
/// a bundle with `n` labels uses `PROTOTYPES[i % len]`.
pub const PROTOTYPES: [[u8; 3]; 5] = [
    [230, 200, 40], // yellow
    [40, 70, 220],  // blue
    [220, 40, 40],  // red
    [230, 60, 220], // magenta
    [40, 200, 70],  // green
];

/// Options of [`write_tiny_bundle`].
#[derive(Clone, Debug)]
pub struct TinyBundle {
    /// Genre labels (model output order).
    pub labels: LabelSet,
    /// Classifier input side.
    pub classifier_size: u32,
    /// Detector input side (a multiple of 20); `None` for a bundle without detector.
    pub detector_size: Option<u32>,
    /// Add fusion parameters to the manifest.
    pub fusion: bool,
}

impl Default for TinyBundle {
    fn default() -> Self {
        Self {
            labels: LabelSet::covers5(),
            classifier_size: 64,
            detector_size: Some(160),
            fusion: true,
        }
    }
}

/// Writes a complete, valid bundle (models + manifest with SHA-256s) into `dir`.
pub fn write_tiny_bundle(dir: &Path, opts: &TinyBundle) -> std::io::Result<BundleManifest> {
    let n = opts.labels.len();
    let file = |name: &str, bytes: &[u8]| -> std::io::Result<ModelFile> {
        write_atomic(&dir.join(name), bytes)?;
        Ok(ModelFile {
            precision: Precision::F32,
            path: name.into(),
            sha256: sha256_hex(bytes),
            bytes: bytes.len() as u64,
        })
    };
    let classifier = ModelEntry {
        files: vec![file(
            "classifier.onnx",
            &tiny_classifier_onnx(opts.classifier_size, n),
        )?],
        selected: Precision::F32,
        input_name: "image".into(),
        output_names: vec!["logits".into()],
        preprocess: PreprocessConfig::signed_unit(opts.classifier_size),
    };
    let detector = match opts.detector_size {
        Some(s) => Some(DetectorEntry {
            model: ModelEntry {
                files: vec![file("detector.onnx", &tiny_detector_onnx(s))?],
                selected: Precision::F32,
                input_name: "image".into(),
                output_names: vec!["boxes".into(), "logits".into()],
                preprocess: PreprocessConfig::signed_unit(s),
            },
            anchors: AnchorConfig::ssdlite_320(),
            decode: DecodeParams::default(),
            pa_threshold: None,
        }),
        None => None,
    };
    let fusion = opts.fusion.then(|| FusionParams {
        p_pa_given_genre: (0..n).map(|i| if i == 2 { 0.6 } else { 0.1 }).collect(),
        strength: 0.5,
        pa_threshold: 0.5,
    });
    let metrics = BTreeMap::new();
    let manifest = BundleManifest {
        format_version: BUNDLE_FORMAT_VERSION,
        name: "tiny-test-bundle".into(),
        labels: opts.labels.clone(),
        classifier,
        detector,
        fusion,
        calibration: Some(ClassifierCalibration::default()),
        joint: None,
        provenance: Provenance {
            data: "none: hand-written colour-prototype rules".into(),
            commands: vec!["sleeve_edge::fixtures::write_tiny_bundle".into()],
            ..Provenance::default()
        },
        metrics,
    };
    write_atomic(&dir.join(MANIFEST_FILE), manifest.to_json().as_bytes())?;
    Ok(manifest)
}

/// Output names of [`tiny_joint_onnx`], in order.
pub const TINY_JOINT_OUTPUTS: [&str; 3] = ["genre_logits", "boxes", "pa_logits"];

/// The tiny classifier and detector as one graph on one `size` input (the classifier's
/// mean colour does not depend on the size): outputs [`TINY_JOINT_OUTPUTS`].
pub fn tiny_joint_onnx(size: u32, num_labels: usize) -> Vec<u8> {
    let decode = |b: Vec<u8>| {
        pb::ModelProto::decode(b.as_slice())
            .expect("own model")
            .graph
            .expect("graph")
    };
    let c = decode(tiny_classifier_onnx(size, num_labels));
    let mut g = decode(tiny_detector_onnx(size));
    let rename = |v: &mut String, from: &str, to: &str| {
        if v == from {
            *v = to.into();
        }
    };
    for n in &mut g.node {
        n.output
            .iter_mut()
            .for_each(|o| rename(o, "logits", "pa_logits"));
    }
    for n in c.node {
        let mut n = n;
        n.output
            .iter_mut()
            .for_each(|o| rename(o, "logits", "genre_logits"));
        g.node.push(n);
    }
    g.initializer.extend(c.initializer);
    let mut outputs = c.output;
    outputs[0].name = TINY_JOINT_OUTPUTS[0].into();
    g.output[1].name = TINY_JOINT_OUTPUTS[2].into();
    outputs.append(&mut g.output);
    g.output = outputs;
    g.name = "tiny_joint".into();
    model(g)
}

/// Writes [`write_tiny_bundle`]'s bundle as format 2 with a joint model (`sleeve.onnx`)
/// at the detector's size; `keep_separate: false` drops the two models' files.
pub fn write_tiny_joint_bundle(
    dir: &Path,
    opts: &TinyBundle,
    keep_separate: bool,
) -> std::io::Result<BundleManifest> {
    let mut m = write_tiny_bundle(dir, opts)?;
    let size = opts.detector_size.expect("a joint bundle needs a detector");
    let bytes = tiny_joint_onnx(size, opts.labels.len());
    write_atomic(&dir.join("sleeve.onnx"), &bytes)?;
    if !keep_separate {
        std::fs::remove_file(dir.join("classifier.onnx"))?;
        std::fs::remove_file(dir.join("detector.onnx"))?;
        m.classifier.files.clear();
        if let Some(d) = &mut m.detector {
            d.model.files.clear();
        }
    }
    m.joint = Some(JointEntry {
        model: ModelEntry {
            files: vec![ModelFile {
                precision: Precision::F32,
                path: "sleeve.onnx".into(),
                sha256: sha256_hex(&bytes),
                bytes: bytes.len() as u64,
            }],
            selected: Precision::F32,
            input_name: "image".into(),
            output_names: TINY_JOINT_OUTPUTS.iter().map(|s| s.to_string()).collect(),
            preprocess: PreprocessConfig::signed_unit(size),
        },
        shared: SharedPrefix {
            nodes: 0,
            convs: 0,
            weights_sha256: sha256_hex(b""),
            first_unshared: None,
        },
    });
    m.validate().map_err(std::io::Error::other)?;
    write_atomic(&dir.join(MANIFEST_FILE), m.to_json().as_bytes())?;
    Ok(m)
}

/// The tiny classifier: logits `2·s·c_k·x − s·|c_k|²` of the mean colour `x` (in the
/// `[-1, 1]` signed-unit space), i.e. nearest prototype wins.
pub fn tiny_classifier_onnx(size: u32, num_labels: usize) -> Vec<u8> {
    let scale = 4.0f32;
    let protos: Vec<[f32; 3]> = (0..num_labels)
        .map(|k| PROTOTYPES[k % PROTOTYPES.len()].map(|v| v as f32 / 127.5 - 1.0))
        .collect();
    // Gemm B is [3, N] (K × N), row-major.
    let mut b = vec![0.0f32; 3 * num_labels];
    for (k, c) in protos.iter().enumerate() {
        for ch in 0..3 {
            b[ch * num_labels + k] = 2.0 * scale * c[ch];
        }
    }
    let bias: Vec<f32> = protos
        .iter()
        .map(|c| -scale * c.iter().map(|v| v * v).sum::<f32>())
        .collect();
    let s = i64::from(size);
    let graph = pb::GraphProto {
        name: "tiny_classifier".into(),
        node: vec![
            node("GlobalAveragePool", &["image"], &["pooled"], vec![]),
            node("Flatten", &["pooled"], &["flat"], vec![attr_int("axis", 1)]),
            node("Gemm", &["flat", "W", "b"], &["logits"], vec![]),
        ],
        initializer: vec![
            tensor_f32("W", &[3, num_labels as i64], b),
            tensor_f32("b", &[num_labels as i64], bias),
        ],
        input: vec![value_info("image", &[1, 3, s, s])],
        output: vec![value_info("logits", &[1, num_labels as i64])],
        ..Default::default()
    };
    model(graph)
}

/// Brightness (mean of RGB in `[-1, 1]`) below which the tiny detector fires.
pub const DARK_THRESHOLD: f32 = -0.75;

/// The tiny detector for [`AnchorConfig::ssdlite_320`]: each anchor's logit is
/// `20·(DARK_THRESHOLD − mean brightness of its cell)`, box deltas are zero (boxes = anchors).
pub fn tiny_detector_onnx(size: u32) -> Vec<u8> {
    assert!(
        size.is_multiple_of(20),
        "detector size must be a multiple of 20"
    );
    let cfg = AnchorConfig::ssdlite_320();
    let s = i64::from(size);
    let mut nodes = Vec::new();
    let mut inits = Vec::new();
    let (mut logit_parts, mut box_parts) = (Vec::new(), Vec::new());
    for (m, map) in cfg.feature_maps.iter().enumerate() {
        let per_cell = cfg.anchors_per_cell(map) as i64;
        let cells = i64::from(map.size) * i64::from(map.size);
        let k = s / i64::from(map.size);
        let gain = 20.0f32;
        // Logit conv: every output channel is -gain · mean over 3×k×k, plus gain · threshold.
        let w_len = (per_cell * 3 * k * k) as usize;
        let w = vec![-gain / (3 * k * k) as f32; w_len];
        let b = vec![gain * DARK_THRESHOLD; per_cell as usize];
        let (wn, bn) = (format!("wl{m}"), format!("bl{m}"));
        inits.push(tensor_f32(&wn, &[per_cell, 3, k, k], w));
        inits.push(tensor_f32(&bn, &[per_cell], b));
        let conv_attrs = || {
            vec![
                attr_ints("kernel_shape", &[k, k]),
                attr_ints("strides", &[k, k]),
            ]
        };
        nodes.push(node(
            "Conv",
            &["image", &wn, &bn],
            &[&format!("cl{m}")],
            conv_attrs(),
        ));
        nodes.push(node(
            "Transpose",
            &[&format!("cl{m}")],
            &[&format!("tl{m}")],
            vec![attr_ints("perm", &[0, 2, 3, 1])],
        ));
        let shape_l = format!("shl{m}");
        inits.push(tensor_i64(&shape_l, &[2], vec![1, cells * per_cell]));
        nodes.push(node(
            "Reshape",
            &[&format!("tl{m}"), &shape_l],
            &[&format!("rl{m}")],
            vec![],
        ));
        logit_parts.push(format!("rl{m}"));
        // Box conv: zero weights, 4 deltas per anchor.
        let (wbn, bbn) = (format!("wb{m}"), format!("bb{m}"));
        inits.push(tensor_f32(
            &wbn,
            &[per_cell * 4, 3, k, k],
            vec![0.0; w_len * 4],
        ));
        inits.push(tensor_f32(
            &bbn,
            &[per_cell * 4],
            vec![0.0; per_cell as usize * 4],
        ));
        nodes.push(node(
            "Conv",
            &["image", &wbn, &bbn],
            &[&format!("cb{m}")],
            conv_attrs(),
        ));
        nodes.push(node(
            "Transpose",
            &[&format!("cb{m}")],
            &[&format!("tb{m}")],
            vec![attr_ints("perm", &[0, 2, 3, 1])],
        ));
        let shape_b = format!("shb{m}");
        inits.push(tensor_i64(&shape_b, &[3], vec![1, cells * per_cell, 4]));
        nodes.push(node(
            "Reshape",
            &[&format!("tb{m}"), &shape_b],
            &[&format!("rb{m}")],
            vec![],
        ));
        box_parts.push(format!("rb{m}"));
    }
    let refs = |v: &[String]| v.iter().map(String::clone).collect::<Vec<_>>();
    let a = cfg.num_anchors() as i64;
    nodes.push(node_owned(
        "Concat",
        refs(&box_parts),
        vec!["boxes".into()],
        vec![attr_int("axis", 1)],
    ));
    nodes.push(node_owned(
        "Concat",
        refs(&logit_parts),
        vec!["logits".into()],
        vec![attr_int("axis", 1)],
    ));
    let graph = pb::GraphProto {
        name: "tiny_detector".into(),
        node: nodes,
        initializer: inits,
        input: vec![value_info("image", &[1, 3, s, s])],
        output: vec![
            value_info("boxes", &[1, a, 4]),
            value_info("logits", &[1, a]),
        ],
        ..Default::default()
    };
    model(graph)
}

fn model(graph: pb::GraphProto) -> Vec<u8> {
    pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        producer_name: "sleeve-edge-fixtures".into(),
        graph: Some(graph),
        ..Default::default()
    }
    .encode_to_vec()
}

fn node(
    op: &str,
    inputs: &[&str],
    outputs: &[&str],
    attribute: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    node_owned(
        op,
        inputs.iter().map(|s| s.to_string()).collect(),
        outputs.iter().map(|s| s.to_string()).collect(),
        attribute,
    )
}

fn node_owned(
    op: &str,
    input: Vec<String>,
    output: Vec<String>,
    attribute: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto {
        name: format!("{op}_{}", output[0]),
        op_type: op.into(),
        input,
        output,
        attribute,
        ..Default::default()
    }
}

fn attr_int(name: &str, i: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i,
        ..Default::default()
    }
}

fn tensor_f32(name: &str, dims: &[i64], data: Vec<f32>) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: pb::tensor_proto::DataType::Float as i32,
        float_data: data,
        ..Default::default()
    }
}

fn tensor_i64(name: &str, dims: &[i64], data: Vec<i64>) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: pb::tensor_proto::DataType::Int64 as i32,
        int64_data: data,
        ..Default::default()
    }
}

fn value_info(name: &str, dims: &[i64]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{Dimension, dimension};
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: pb::tensor_proto::DataType::Float as i32,
                shape: Some(pb::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension {
                            value: Some(dimension::Value::DimValue(d)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A flat cover of prototype colour `class`, optionally with a black "PA label" box in the
/// lower-right corner (what the tiny detector fires on).
pub fn tiny_cover(class: usize, size: u32, pa: bool) -> RgbImage {
    let c = PROTOTYPES[class % PROTOTYPES.len()];
    let mut img = RgbImage::from_pixel(size, size, Rgb(c));
    if pa {
        // About 30 % × 20 % of the cover, like a real label; covers several detector cells.
        let (x0, y0) = (size * 62 / 100, size * 74 / 100);
        for y in y0..size * 96 / 100 {
            for x in x0..size * 96 / 100 {
                img.put_pixel(x, y, Rgb([10, 10, 10]));
            }
        }
    }
    img
}

/// A camera-like frame: a cover warped onto a textured background at `corners` (clockwise
/// from top-left, pixels), or just the background when `cover` is `None`.
pub fn tiny_scene(
    width: u32,
    height: u32,
    cover: Option<&RgbImage>,
    corners: [(f32, f32); 4],
    seed: u32,
) -> RgbImage {
    let mut frame = RgbImage::from_fn(width, height, |x, y| {
        // Deterministic low-contrast "table" texture.
        let h = (x.wrapping_mul(73_856_093)
            ^ y.wrapping_mul(19_349_663)
            ^ seed.wrapping_mul(83_492_791))
            % 23;
        let v = (120 + (x + y) / 16 % 20 + h) as u8;
        Rgb([v, v.saturating_sub(8), v.saturating_sub(16)])
    });
    if let Some(cover) = cover {
        let (w, h) = (cover.width() as f32, cover.height() as f32);
        let src = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)];
        if let Some(p) = Projection::from_control_points(src, corners) {
            // Warp into a copy, then paste only the pixels inside the quad.
            let mut warped = frame.clone();
            warp_into(
                cover,
                p,
                Interpolation::Bilinear,
                Border::Constant(Rgb([0, 0, 0])),
                &mut warped,
            );
            for (x, y, px) in frame.enumerate_pixels_mut() {
                if inside_quad(&corners, x as f32 + 0.5, y as f32 + 0.5) {
                    *px = *warped.get_pixel(x, y);
                }
            }
        }
    }
    frame
}

/// True when `(x, y)` is inside the convex quadrilateral `q` (either orientation).
pub fn inside_quad(q: &[(f32, f32); 4], x: f32, y: f32) -> bool {
    let mut sign = 0.0f32;
    for i in 0..4 {
        let (a, b) = (q[i], q[(i + 1) % 4]);
        let cross = (b.0 - a.0) * (y - a.1) - (b.1 - a.1) * (x - a.0);
        if cross != 0.0 {
            if sign == 0.0 {
                sign = cross.signum();
            } else if cross.signum() != sign {
                return false;
            }
        }
    }
    true
}
