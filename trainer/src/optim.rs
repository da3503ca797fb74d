//! AdamW with nanoGPT's weight-decay rule, and global-norm gradient clipping.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{
    AdamW, AdamWConfig, AdamWState, AdaptiveMomentumState, GradientsParams, LearningRate, ModuleOptimizer, Optimizer,
};
use burn::tensor::{Device, Tensor};
use primer_kernels::{self as fused, AdamWStep};

use crate::config::TrainConfig;

/// PyTorch's AdamW epsilon (burn's default is 1e-5).
const EPSILON: f32 = 1e-8;

/// AdamW that decays weight matrices and embeddings (rank >= 2) and leaves norms and biases
/// (rank 1) alone, as nanoGPT does. Where the backend has a fused AdamW kernel (flex, tch) each
/// update is one pass over the parameter; elsewhere it is burn's `AdamW`. Both keep burn's
/// `AdamWState`, so checkpoints are the same either way.
#[derive(Clone)]
pub struct MatrixDecayAdamW {
    beta_1: f32,
    beta_2: f32,
    weight_decay: f32,
}

impl MatrixDecayAdamW {
    /// burn's `AdamW` with these settings and `weight_decay`, for backends without the fused
    /// update.
    fn burns(&self, weight_decay: f32) -> AdamW {
        AdamWConfig::new()
            .with_beta_1(self.beta_1)
            .with_beta_2(self.beta_2)
            .with_epsilon(EPSILON)
            .with_weight_decay(weight_decay)
            .build()
    }
}

impl Optimizer for MatrixDecayAdamW {
    type State<const D: usize> = AdamWState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let weight_decay = if D >= 2 { self.weight_decay } else { 0.0 };
        let momentum = state.as_ref().map(|state| &state.momentum);
        let time = momentum.map_or(0, |momentum| momentum.time) + 1;
        let step = AdamWStep {
            lr,
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: EPSILON,
            weight_decay,
            time,
        };
        let moments = momentum.map(|momentum| [momentum.moment_1.clone(), momentum.moment_2.clone()]);
        if let Some((tensor, [moment_1, moment_2])) = fused::adamw(&tensor, &grad, moments.as_ref(), step) {
            let momentum = AdaptiveMomentumState {
                time,
                moment_1,
                moment_2,
                max_moment_2: None,
            };
            return (tensor, Some(AdamWState { momentum }));
        }
        self.burns(weight_decay).step(lr, tensor, grad, state)
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        AdamW::to_device(state, device)
    }
}

/// The run's optimizer (see [`adamw`]).
pub fn optimizer(config: &TrainConfig) -> ModuleOptimizer {
    adamw(config.beta1, config.beta2, config.weight_decay)
}

/// [`MatrixDecayAdamW`] with PyTorch's epsilon (1e-8, not burn's 1e-5).
pub fn adamw(beta1: f64, beta2: f64, weight_decay: f64) -> ModuleOptimizer {
    MatrixDecayAdamW {
        beta_1: beta1 as f32,
        beta_2: beta2 as f32,
        weight_decay: weight_decay as f32,
    }
    .into()
}

/// The L2 norm of all gradients together, as one number.
pub fn global_grad_norm<M: Module>(model: &M, grads: &GradientsParams) -> f64 {
    struct SquaredSum<'a> {
        grads: &'a GradientsParams,
        total: Option<Tensor<1>>,
    }
    impl ModuleVisitor for SquaredSum<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(grad) = self.grads.get::<D>(param.id) {
                let squares = grad.powi_scalar(2).sum();
                self.total = Some(match self.total.take() {
                    Some(total) => total + squares,
                    None => squares,
                });
            }
        }
    }
    let mut visitor = SquaredSum { grads, total: None };
    model.visit(&mut visitor);
    visitor.total.map_or(0.0, |total| total.into_scalar::<f64>().sqrt())
}

/// Scales every gradient by `factor`.
pub fn scale_grads<M: Module>(model: &M, grads: &mut GradientsParams, factor: f64) {
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        factor: f64,
    }
    impl ModuleVisitor for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(grad) = self.grads.remove::<D>(param.id) {
                self.grads.register(param.id, grad.mul_scalar(self.factor));
            }
        }
    }
    model.visit(&mut Scale { grads, factor });
}

/// Clips gradients to a global L2 norm of `max_norm` (PyTorch's `clip_grad_norm_`) and returns
/// the norm before clipping. `max_norm == 0` only measures.
pub fn clip_global_norm<M: Module>(model: &M, grads: &mut GradientsParams, max_norm: f64) -> f64 {
    let norm = global_grad_norm(model, grads);
    if max_norm > 0.0 && norm > max_norm {
        scale_grads(model, grads, max_norm / (norm + 1e-6));
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
    use burn::tensor::{Distribution, Tolerance};

    #[derive(Module, Debug)]
    struct Tiny {
        linear: Linear,
        norm: LayerNorm,
    }

    fn tiny(device: &Device) -> Tiny {
        Tiny {
            linear: LinearConfig::new(4, 3).init(device),
            norm: LayerNormConfig::new(3).init(device),
        }
    }

    fn grads_of(model: &Tiny, device: &Device) -> GradientsParams {
        let x = Tensor::<2>::random([5, 4], Distribution::Normal(0.0, 1.0), device);
        let loss = model
            .norm
            .forward(model.linear.forward(x))
            .powi_scalar(2)
            .sum()
            .mul_scalar(10.0);
        GradientsParams::from_grads(loss.backward(), model)
    }

    #[test]
    fn global_norm_clipping_scales_all_gradients_together() {
        let device = Device::flex().autodiff();
        let model = tiny(&device);
        let mut grads = grads_of(&model, &device);
        let weight_before = grads.get::<2>(model.linear.weight.id).unwrap();
        let norm = clip_global_norm(&model, &mut grads, 0.5);
        assert!(norm > 0.5, "test needs a norm above the threshold, got {norm}");
        let clipped = global_grad_norm(&model, &grads);
        assert!((clipped - 0.5).abs() < 1e-4, "clipped norm {clipped}");
        // One factor for every tensor: directions are kept.
        let weight_after = grads.get::<2>(model.linear.weight.id).unwrap();
        weight_after.into_data().assert_approx_eq::<f32>(
            &weight_before.mul_scalar(0.5 / norm).into_data(),
            Tolerance::rel_abs(1e-4, 1e-6),
        );
    }

    #[test]
    fn weight_decay_touches_matrices_only() {
        let device = Device::flex().autodiff();
        let model = tiny(&device);
        let config = TrainConfig {
            weight_decay: 0.5,
            ..crate::tests::train_config()
        };
        let mut optim = optimizer(&config);
        // Zero gradients: AdamW's update is zero, only decay moves parameters.
        let mut grads = grads_of(&model, &device);
        scale_grads(&model, &mut grads, 0.0);
        let weight = model.linear.weight.val().into_data();
        let gamma = model.norm.gamma.val().into_data();
        let model = optim.step(0.1, model, grads);
        model.linear.weight.val().into_data().assert_approx_eq::<f32>(
            &Tensor::<2>::from_data(weight, &device)
                .mul_scalar(1.0 - 0.1 * 0.5)
                .into_data(),
            Tolerance::default(),
        );
        model
            .norm
            .gamma
            .val()
            .into_data()
            .assert_approx_eq::<f32>(&gamma, Tolerance::default());
    }
}
