//! A small CNN trained from scratch: the "no transfer learning" baseline (seed 002
//! compared scratch against transfer). `stages` blocks of conv3×3 → BN → ReLU → 2×2 max
//! pool, channels doubling each stage, then global average pooling, dropout and a linear
//! head.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d,
};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

/// Configuration of a [`ScratchCnn`].
#[derive(Config, Debug)]
pub struct ScratchCnnConfig {
    /// Number of output classes.
    pub num_classes: usize,
    /// Channels of the first stage (doubled at every later stage).
    #[config(default = 32)]
    pub base_channels: usize,
    /// Number of conv-bn-relu-pool stages.
    #[config(default = 4)]
    pub stages: usize,
    /// Dropout probability before the head.
    #[config(default = 0.3)]
    pub dropout: f64,
}

impl ScratchCnnConfig {
    /// Channels of the embedding (the last stage's output).
    pub fn embed_channels(&self) -> usize {
        self.base_channels << self.stages.saturating_sub(1)
    }

    /// Checks the configuration is usable.
    pub fn validate(&self) -> Result<(), String> {
        if self.num_classes == 0 || self.base_channels == 0 || self.stages == 0 {
            return Err("num_classes, base_channels and stages must be positive".into());
        }
        if self.stages > 8 {
            return Err(format!("{} stages is more than 8", self.stages));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!("dropout {} outside [0, 1)", self.dropout));
        }
        Ok(())
    }

    /// Creates a randomly initialised network.
    ///
    /// # Panics
    /// When [`validate`](Self::validate) fails.
    pub fn init(&self, device: &Device) -> ScratchCnn {
        if let Err(e) = self.validate() {
            panic!("invalid ScratchCnnConfig: {e}");
        }
        let mut stages = Vec::with_capacity(self.stages);
        let mut cin = 3;
        for i in 0..self.stages {
            let cout = self.base_channels << i;
            stages.push(ConvBnRelu {
                conv: Conv2dConfig::new([cin, cout], [3, 3])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .with_bias(false)
                    .init(device),
                bn: BatchNormConfig::new(cout).init(device),
            });
            cin = cout;
        }
        ScratchCnn {
            stages,
            max_pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            dropout: DropoutConfig::new(self.dropout).init(),
            classifier: LinearConfig::new(cin, self.num_classes).init(device),
        }
    }
}

/// Conv 3×3 → BatchNorm → ReLU.
#[derive(Module, Debug)]
pub struct ConvBnRelu {
    /// The convolution.
    pub conv: Conv2d,
    /// Batch normalisation.
    pub bn: BatchNorm,
}

/// The scratch baseline CNN. Build it with [`ScratchCnnConfig::init`].
#[derive(Module, Debug)]
pub struct ScratchCnn {
    /// Conv stages, each followed by 2×2 max pooling.
    pub stages: Vec<ConvBnRelu>,
    /// The 2×2 stride-2 max pool after each stage.
    pub max_pool: MaxPool2d,
    /// Global average pooling.
    pub pool: AdaptiveAvgPool2d,
    /// Dropout before the head.
    pub dropout: Dropout,
    /// Linear head.
    pub classifier: Linear,
}

impl ScratchCnn {
    /// Images `[N, 3, S, S]` → logits `[N, num_classes]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.classifier.forward(self.dropout.forward(self.embed(x)))
    }

    /// Images → pooled last-stage features `[N, embed_channels]`.
    pub fn embed(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = x;
        for s in &self.stages {
            x = self.max_pool.forward(relu(s.bn.forward(s.conv.forward(x))));
        }
        let [n, c, _, _] = x.dims();
        self.pool.forward(x).reshape([n, c])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_shapes() {
        let device = Device::flex();
        let cfg = ScratchCnnConfig::new(4)
            .with_base_channels(4)
            .with_stages(3);
        let m = cfg.init(&device);
        let x = Tensor::<4>::ones([2, 3, 32, 32], &device);
        assert_eq!(m.embed(x.clone()).dims(), [2, cfg.embed_channels()]);
        assert_eq!(m.forward(x).dims(), [2, 4]);
    }
}
