//! Exponential moving average of a module's weights (`ema ← d·ema + (1−d)·model` after
//! every optimizer step), the "EMA of weights" regulariser the training loop offers.

use std::collections::VecDeque;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// Every float parameter of a module, flattened, in visiting order.
struct Collect(VecDeque<Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val();
        let n = t.shape().num_elements();
        self.0.push_back(t.reshape([n]));
    }
}

/// Blends every float parameter with the next collected one.
struct Blend {
    from: VecDeque<Tensor<1>>,
    decay: f32,
}

impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(other) = self.from.pop_front() else {
            return param;
        };
        let decay = self.decay;
        param.map(|ema| {
            let dims = ema.dims();
            let other = other.reshape(dims).to_device(&ema.device());
            ema.mul_scalar(decay) + other.mul_scalar(1.0 - decay)
        })
    }
}

/// `ema` moved towards `model` by `1 − decay` (both the same architecture; `model` is read
/// in inference mode, so no gradient reaches the average).
pub fn update<M: Module>(ema: M, model: &M, decay: f32) -> M {
    let mut collect = Collect(VecDeque::new());
    model.clone().valid().visit(&mut collect);
    let mut blend = Blend {
        from: collect.0,
        decay,
    };
    ema.map(&mut blend)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::Device;

    fn weights(l: &Linear) -> Vec<f32> {
        l.weight.val().into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn the_average_moves_towards_the_model_by_one_minus_decay() {
        let device = Device::flex();
        let a = LinearConfig::new(3, 2).init(&device);
        let b = LinearConfig::new(3, 2).init(&device);
        let (wa, wb) = (weights(&a), weights(&b));
        let mixed = update(a.clone(), &b, 0.75);
        for ((m, x), y) in weights(&mixed).iter().zip(&wa).zip(&wb) {
            assert!((m - (0.75 * x + 0.25 * y)).abs() < 1e-6, "{m} {x} {y}");
        }
        // decay 1 keeps the average, 0 copies the model
        assert_eq!(weights(&update(a.clone(), &b, 1.0)), wa);
        assert_eq!(weights(&update(a, &b, 0.0)), wb);
    }
}
