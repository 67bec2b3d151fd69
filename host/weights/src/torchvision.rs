//! torchvision `mobilenet_v2` state dicts stored as safetensors: reading (with BN folding),
//! and writing random ones for tests.
//!
//! Keys (torchvision `MobileNetV2`, any width multiplier, any number of classes):
//!
//! | layer | convolution weight | batch norm (`weight, bias, running_mean, running_var`) |
//! |---|---|---|
//! | stem | `features.0.0.weight` `[C,3,3,3]` | `features.0.1.*` |
//! | block 0 (t = 1) depthwise | `features.1.conv.0.0.weight` `[C,1,3,3]` | `features.1.conv.0.1.*` |
//! | block 0 projection | `features.1.conv.1.weight` `[O,C,1,1]` | `features.1.conv.2.*` |
//! | block k ≥ 1 expansion | `features.{k+1}.conv.0.0.weight` `[H,I,1,1]` | `features.{k+1}.conv.0.1.*` |
//! | block k ≥ 1 depthwise | `features.{k+1}.conv.1.0.weight` `[H,1,3,3]` | `features.{k+1}.conv.1.1.*` |
//! | block k ≥ 1 projection | `features.{k+1}.conv.2.weight` `[O,H,1,1]` | `features.{k+1}.conv.3.*` |
//! | last | `features.18.0.weight` `[F,C,1,1]` | `features.18.1.*` |
//! | classifier | `classifier.1.weight` `[N,F]`, `classifier.1.bias` `[N]` | — |
//!
//! `*.num_batches_tracked` (int64) is ignored. Strides follow MobileNetV2's block table,
//! 3×3 convolutions pad 1 on every side ([`Padding::Symmetric`]), BN eps is
//! [`TORCHVISION_BN_EPS`]. Float tensors may be F32, F16, BF16 or F64.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safetensors::{Dtype, SafeTensors};

use crate::error::{Result, WeightsError};
use crate::layout::{
    Activation, BatchNorm, ConvWeights, InputNorm, InvertedResidual, Linear, MobileNetV2Weights,
    NUM_BLOCKS, Padding, Tensor4, block_plan, expected_channels, fold_batch_norm,
};

/// BatchNorm epsilon of torchvision's MobileNetV2 (`nn.BatchNorm2d` default).
pub const TORCHVISION_BN_EPS: f32 = 1e-5;

/// A named set of f32 tensors (a state dict), ordered by key.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StateDict {
    /// `key → (shape, row-major values)`.
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    /// Integer tensors that were skipped when reading (e.g. `num_batches_tracked`).
    pub skipped: Vec<String>,
}

impl StateDict {
    /// Reads every floating-point tensor of a safetensors file (converted to f32); integer
    /// and boolean tensors are listed in [`skipped`](Self::skipped).
    pub fn read_safetensors(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| WeightsError::io(path, e))?;
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|e| WeightsError::format(path, format!("not a safetensors file: {e}")))?;
        let mut dict = StateDict::default();
        for (name, view) in st.tensors() {
            let data = view.data();
            let values: Vec<f32> = match view.dtype() {
                Dtype::F32 => data
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
                Dtype::F64 => data
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
                    .collect(),
                Dtype::F16 => data
                    .chunks_exact(2)
                    .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                    .collect(),
                Dtype::BF16 => data
                    .chunks_exact(2)
                    .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                    .collect(),
                _ => {
                    dict.skipped.push(name);
                    continue;
                }
            };
            dict.tensors.insert(name, (view.shape().to_vec(), values));
        }
        dict.skipped.sort();
        Ok(dict)
    }

    /// Writes the tensors as F32 safetensors, atomically. With `batches_tracked`, also
    /// writes an int64 scalar `<prefix>.num_batches_tracked` next to every
    /// `<prefix>.running_mean`, like a real torchvision file.
    pub fn write_safetensors(&self, path: impl AsRef<Path>, batches_tracked: bool) -> Result<()> {
        let path = path.as_ref();
        let mut raw: BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)> = BTreeMap::new();
        for (key, (shape, values)) in &self.tensors {
            let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            raw.insert(key.clone(), (Dtype::F32, shape.clone(), bytes));
            if let Some(prefix) = key
                .strip_suffix(".running_mean")
                .filter(|_| batches_tracked)
            {
                let tracked = 1000i64.to_le_bytes().to_vec();
                raw.insert(
                    format!("{prefix}.num_batches_tracked"),
                    (Dtype::I64, vec![], tracked),
                );
            }
        }
        let mut views = Vec::with_capacity(raw.len());
        for (key, (dtype, shape, bytes)) in &raw {
            let view = safetensors::tensor::TensorView::new(*dtype, shape.clone(), bytes)
                .map_err(|e| WeightsError::Invalid(format!("tensor `{key}`: {e}")))?;
            views.push((key.as_str(), view));
        }
        let bytes = safetensors::serialize(views, None)
            .map_err(|e| WeightsError::format(path, format!("cannot serialise: {e}")))?;
        sleeve_shared::fsutil::write_atomic(path, &bytes).map_err(|e| WeightsError::io(path, e))
    }

    fn insert(&mut self, key: String, shape: Vec<usize>, values: Vec<f32>) {
        self.tensors.insert(key, (shape, values));
    }
}

/// The result of mapping a state dict onto MobileNetV2.
#[derive(Clone, Debug)]
pub struct Imported {
    /// The folded weights.
    pub weights: MobileNetV2Weights,
    /// Keys that were used (every float tensor of a clean torchvision file).
    pub used: BTreeSet<String>,
    /// Float keys present in the file but not used (logged as a warning).
    pub unused: Vec<String>,
}

/// Reads a torchvision-keyed MobileNetV2 safetensors file and folds its batch norms.
pub fn read_torchvision_safetensors(path: impl AsRef<Path>) -> Result<MobileNetV2Weights> {
    let path = path.as_ref();
    let dict = StateDict::read_safetensors(path)?;
    Ok(import_state_dict(&dict, path)?.weights)
}

/// Maps a torchvision state dict onto MobileNetV2 (any width multiplier — channel counts
/// come from the tensor shapes — and any number of classes). `path` names the source in
/// errors and in [`MobileNetV2Weights::source`].
pub fn import_state_dict(dict: &StateDict, path: &Path) -> Result<Imported> {
    let mut r = Reader {
        dict,
        path: path.to_path_buf(),
        used: BTreeSet::new(),
    };
    let stem = r.conv_bn("features.0.0", "features.0.1", Role::Stem)?;
    let mut blocks = Vec::with_capacity(NUM_BLOCKS);
    for (i, (t, _, stride)) in block_plan().into_iter().enumerate() {
        let f = format!("features.{}.conv", i + 1);
        let block = if t == 1 {
            InvertedResidual {
                expand: None,
                depthwise: r.conv_bn(
                    &format!("{f}.0.0"),
                    &format!("{f}.0.1"),
                    Role::Depthwise(stride),
                )?,
                project: r.conv_bn(&format!("{f}.1"), &format!("{f}.2"), Role::Project)?,
            }
        } else {
            InvertedResidual {
                expand: Some(r.conv_bn(&format!("{f}.0.0"), &format!("{f}.0.1"), Role::Expand)?),
                depthwise: r.conv_bn(
                    &format!("{f}.1.0"),
                    &format!("{f}.1.1"),
                    Role::Depthwise(stride),
                )?,
                project: r.conv_bn(&format!("{f}.2"), &format!("{f}.3"), Role::Project)?,
            }
        };
        blocks.push(block);
    }
    let last = r.conv_bn("features.18.0", "features.18.1", Role::Last)?;
    let (wshape, weight) = r.take("classifier.1.weight")?;
    let [out_features, in_features] = wshape[..] else {
        return Err(r.shape_err("classifier.1.weight", &wshape, "[num_classes, features]"));
    };
    let (bshape, bias) = r.take("classifier.1.bias")?;
    if bshape != [out_features] {
        return Err(r.shape_err("classifier.1.bias", &bshape, &format!("[{out_features}]")));
    }
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let weights = MobileNetV2Weights {
        stem,
        blocks,
        last,
        classifier: Linear {
            weight,
            bias,
            in_features,
            out_features,
        },
        num_classes: out_features,
        background_class: false,
        input_norm: InputNorm::IMAGENET,
        input_size: 224,
        source: format!("{name} (torchvision safetensors)"),
    };
    weights.validate()?;
    let unused: Vec<String> = dict
        .tensors
        .keys()
        .filter(|k| !r.used.contains(*k))
        .cloned()
        .collect();
    if !unused.is_empty() {
        tracing::warn!(
            "{}: {} tensors not used by MobileNetV2 (first: {})",
            path.display(),
            unused.len(),
            unused[0]
        );
    }
    Ok(Imported {
        weights,
        used: r.used,
        unused,
    })
}

#[derive(Clone, Copy)]
enum Role {
    Stem,
    Expand,
    Depthwise(usize),
    Project,
    Last,
}

struct Reader<'a> {
    dict: &'a StateDict,
    path: PathBuf,
    used: BTreeSet<String>,
}

impl Reader<'_> {
    fn take(&mut self, key: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let (shape, values) =
            self.dict
                .tensors
                .get(key)
                .ok_or_else(|| WeightsError::MissingKey {
                    path: self.path.clone(),
                    key: key.to_string(),
                })?;
        self.used.insert(key.to_string());
        Ok((shape.clone(), values.clone()))
    }

    fn shape_err(&self, key: &str, actual: &[usize], expected: &str) -> WeightsError {
        WeightsError::Shape {
            path: self.path.clone(),
            key: key.to_string(),
            actual: actual.to_vec(),
            expected: expected.to_string(),
        }
    }

    fn vector(&mut self, key: &str, n: usize) -> Result<Vec<f32>> {
        let (shape, values) = self.take(key)?;
        if shape != [n] {
            return Err(self.shape_err(key, &shape, &format!("[{n}]")));
        }
        Ok(values)
    }

    fn conv_bn(&mut self, conv: &str, bn: &str, role: Role) -> Result<ConvWeights> {
        let key = format!("{conv}.weight");
        let (shape, data) = self.take(&key)?;
        let (expected, ok) = match (role, &shape[..]) {
            (Role::Stem, [_, i, 3, 3]) => ("[C, 3, 3, 3]", *i == 3),
            (Role::Depthwise(_), [_, i, 3, 3]) => ("[C, 1, 3, 3]", *i == 1),
            (Role::Expand | Role::Project | Role::Last, [_, _, 1, 1]) => ("[O, I, 1, 1]", true),
            (Role::Stem, _) => ("[C, 3, 3, 3]", false),
            (Role::Depthwise(_), _) => ("[C, 1, 3, 3]", false),
            _ => ("[O, I, 1, 1]", false),
        };
        let Ok(shape4) = <[usize; 4]>::try_from(&shape[..]) else {
            return Err(self.shape_err(&key, &shape, expected));
        };
        if !ok || shape4[0] == 0 {
            return Err(self.shape_err(&key, &shape, expected));
        }
        let weight = Tensor4::new(shape4, data)?;
        let o = shape4[0];
        let norm = BatchNorm {
            gamma: self.vector(&format!("{bn}.weight"), o)?,
            beta: self.vector(&format!("{bn}.bias"), o)?,
            mean: self.vector(&format!("{bn}.running_mean"), o)?,
            var: self.vector(&format!("{bn}.running_var"), o)?,
            eps: TORCHVISION_BN_EPS,
        };
        let (weight, bias) = fold_batch_norm(&weight, &norm).map_err(|e| WeightsError::Format {
            path: self.path.clone(),
            message: format!("batch norm `{bn}`: {e}"),
        })?;
        let (stride, groups, padding, activation) = match role {
            Role::Stem => (2, 1, Padding::Symmetric(1), Activation::Relu6),
            Role::Depthwise(s) => (s, o, Padding::Symmetric(1), Activation::Relu6),
            Role::Expand | Role::Last => (1, 1, Padding::Symmetric(0), Activation::Relu6),
            Role::Project => (1, 1, Padding::Symmetric(0), Activation::None),
        };
        Ok(ConvWeights {
            weight,
            bias,
            stride,
            groups,
            padding,
            activation,
        })
    }
}

/// A random torchvision-keyed MobileNetV2 state dict at `width_mult` with `num_classes`
/// outputs (He-uniform convolutions, non-trivial BN statistics), deterministic in `seed`.
/// For tests and demos: it classifies nothing.
pub fn random_torchvision_state_dict(width_mult: f32, num_classes: usize, seed: u64) -> StateDict {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut dict = StateDict::default();
    let conv_bn =
        |dict: &mut StateDict, rng: &mut ChaCha8Rng, conv: &str, bn: &str, shape: [usize; 4]| {
            let fan_in = (shape[1] * shape[2] * shape[3]) as f32;
            let a = (6.0 / fan_in).sqrt();
            let n: usize = shape.iter().product();
            let w = (0..n).map(|_| rng.random_range(-a..a)).collect();
            dict.insert(format!("{conv}.weight"), shape.to_vec(), w);
            let o = shape[0];
            let mut v = |lo: f32, hi: f32| {
                (0..o)
                    .map(|_| rng.random_range(lo..hi))
                    .collect::<Vec<f32>>()
            };
            let (g, b, m, var) = (v(0.5, 1.5), v(-0.2, 0.2), v(-0.2, 0.2), v(0.5, 2.0));
            dict.insert(format!("{bn}.weight"), vec![o], g);
            dict.insert(format!("{bn}.bias"), vec![o], b);
            dict.insert(format!("{bn}.running_mean"), vec![o], m);
            dict.insert(format!("{bn}.running_var"), vec![o], var);
        };
    let (stem, plan, last) = expected_channels(width_mult);
    conv_bn(
        &mut dict,
        &mut rng,
        "features.0.0",
        "features.0.1",
        [stem, 3, 3, 3],
    );
    let mut input = stem;
    for (i, &(hidden, out)) in plan.iter().enumerate() {
        let f = format!("features.{}.conv", i + 1);
        if i == 0 {
            conv_bn(
                &mut dict,
                &mut rng,
                &format!("{f}.0.0"),
                &format!("{f}.0.1"),
                [hidden, 1, 3, 3],
            );
            conv_bn(
                &mut dict,
                &mut rng,
                &format!("{f}.1"),
                &format!("{f}.2"),
                [out, hidden, 1, 1],
            );
        } else {
            conv_bn(
                &mut dict,
                &mut rng,
                &format!("{f}.0.0"),
                &format!("{f}.0.1"),
                [hidden, input, 1, 1],
            );
            conv_bn(
                &mut dict,
                &mut rng,
                &format!("{f}.1.0"),
                &format!("{f}.1.1"),
                [hidden, 1, 3, 3],
            );
            conv_bn(
                &mut dict,
                &mut rng,
                &format!("{f}.2"),
                &format!("{f}.3"),
                [out, hidden, 1, 1],
            );
        }
        input = out;
    }
    conv_bn(
        &mut dict,
        &mut rng,
        "features.18.0",
        "features.18.1",
        [last, input, 1, 1],
    );
    let a = (1.0 / last as f32).sqrt();
    let w = (0..num_classes * last)
        .map(|_| rng.random_range(-a..a))
        .collect();
    let b = (0..num_classes).map(|_| rng.random_range(-a..a)).collect();
    dict.insert("classifier.1.weight".into(), vec![num_classes, last], w);
    dict.insert("classifier.1.bias".into(), vec![num_classes], b);
    dict
}

/// Writes a random torchvision-style MobileNetV2 safetensors file (see
/// [`random_torchvision_state_dict`]), with `num_batches_tracked` entries like a real one,
/// and returns the state dict written.
pub fn write_torchvision_safetensors(
    path: impl AsRef<Path>,
    width_mult: f32,
    num_classes: usize,
    seed: u64,
) -> Result<StateDict> {
    let dict = random_torchvision_state_dict(width_mult, num_classes, seed);
    dict.write_safetensors(path, true)?;
    Ok(dict)
}
