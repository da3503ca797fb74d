//! The fused ops as tensor functions: each checks the device and dtype, and where the backend
//! has no fused kernel runs Burn's composed ops (or answers `None`, for the caller to compose).

use burn::backend::{Dispatch, DispatchDevice};
use burn::nn::{LayerNorm, Linear};
use burn::tensor::activation::gelu as composed_gelu;
use burn::tensor::module::linear as composed_linear;
use burn::tensor::{DType, Device, Tensor};

use crate::{AdamWStep, AttentionMode, FusedOps};

/// Whether tensors of `dtype` on `device` have fused kernels; where not, Burn's composed ops
/// run. Flex's kernels are float32 only; libtorch's are its own dtype-generic ops, which also
/// take bfloat16 and float16 where the op says it `takes_low_precision`.
fn fused(device: &Device, dtype: DType, takes_low_precision: bool) -> bool {
    let backend = device.clone().inner();
    match backend.as_dispatch() {
        DispatchDevice::Flex(_) => dtype == DType::F32,
        #[cfg(feature = "tch")]
        DispatchDevice::LibTorch(_) => {
            dtype == DType::F32 || (takes_low_precision && matches!(dtype, DType::BF16 | DType::F16))
        }
        _ => false,
    }
}

/// `norm(x)`, fused where the backend has a kernel.
///
/// # Shapes
/// - x: `[batch, seq, d_model]`
/// - output: `[batch, seq, d_model]`
pub fn layer_norm(norm: &LayerNorm, epsilon: f64, x: Tensor<3>) -> Tensor<3> {
    let dtype = x.dtype();
    if dtype != DType::F32 {
        // Mixed precision: the statistics in f32, the output in the input's dtype.
        return layer_norm(norm, epsilon, x.cast(DType::F32)).cast(dtype);
    }
    let (true, Some(beta)) = (fused(&x.device(), dtype, false), &norm.beta) else {
        return norm.forward(x);
    };
    let [batch, seq, d_model] = x.dims();
    let rows = x.reshape([batch * seq, d_model]).into_dispatch();
    let out = <Dispatch as FusedOps>::fused_layer_norm(
        rows,
        norm.gamma.val().into_dispatch(),
        beta.val().into_dispatch(),
        epsilon,
    );
    Tensor::<2>::from_dispatch(out).reshape([batch, seq, d_model])
}

/// `linear(x)` in the dtype of `x` (the parameters cast to it, see primer-model's precision),
/// fused where the backend has a kernel and the layer a bias.
///
/// # Shapes
/// - x: `[batch, seq, d_input]`
/// - output: `[batch, seq, d_output]`
pub fn linear(linear: &Linear, x: Tensor<3>) -> Tensor<3> {
    let dtype = x.dtype();
    let weight = linear.weight.val().cast(dtype);
    let bias = linear.bias.as_ref().map(|bias| bias.val().cast(dtype));
    let bias = match bias {
        Some(bias) if fused(&x.device(), dtype, true) => bias,
        bias => return composed_linear(x, weight, bias),
    };
    let [batch, seq, d_input] = x.dims();
    let d_output = weight.dims()[1];
    let output = <Dispatch as FusedOps>::fused_linear(
        x.reshape([batch * seq, d_input]).into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
    );
    Tensor::<2>::from_dispatch(output).reshape([batch, seq, d_output])
}

/// One AdamW update (see [`AdamWStep`]) of a parameter and its moments (zero before the first
/// update), or `None` where the backend has no fused kernel (the caller then composes it).
pub fn adamw<const D: usize>(
    param: &Tensor<D>,
    grad: &Tensor<D>,
    moments: Option<&[Tensor<D>; 2]>,
    step: AdamWStep,
) -> Option<(Tensor<D>, [Tensor<D>; 2])> {
    if !fused(&param.device(), param.dtype(), false) {
        return None;
    }
    let [moment_1, moment_2] = match moments {
        Some(moments) => moments.clone(),
        None => [0, 1].map(|_| param.zeros_like()),
    };
    let [param, grad, moment_1, moment_2] =
        [param.clone(), grad.clone(), moment_1, moment_2].map(Tensor::into_dispatch);
    let (param, moment_1, moment_2) = <Dispatch as FusedOps>::fused_adamw(param, grad, moment_1, moment_2, step);
    let [param, moment_1, moment_2] = [param, moment_1, moment_2].map(Tensor::from_dispatch);
    Some((param, [moment_1, moment_2]))
}

/// GELU (exact), fused where the backend has a kernel.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !fused(&x.device(), x.dtype(), true) {
        return composed_gelu(x);
    }
    Tensor::from_dispatch(<Dispatch as FusedOps>::fused_gelu(x.into_dispatch()))
}

/// Multi-head self-attention without padding from the fused projection `qkv`, with rotary
/// positions if `rotary` is given (see [`FusedOps::fused_rotary_attention`]), or `None` where the backend has no fused kernel (the caller
/// then composes it).
///
/// # Shapes
/// - qkv: `[batch, seq, 3 * d_model]`
/// - rotary: `[seq, head_dim, 2]`: each position's cosines and sines
/// - output: `[batch, seq, d_model]`
pub fn attention(qkv: &Tensor<3>, rotary: Option<Tensor<3>>, heads: usize, mode: &AttentionMode) -> Option<Tensor<3>> {
    let dtype = qkv.dtype();
    if !fused(&qkv.device(), dtype, true) {
        return None;
    }
    let qkv = qkv.clone().into_dispatch();
    let output = match rotary {
        Some(angles) => {
            <Dispatch as FusedOps>::fused_rotary_attention(qkv, angles.cast(dtype).into_dispatch(), heads, mode.clone())
        }
        None => <Dispatch as FusedOps>::fused_attention(qkv, heads, mode.clone()),
    };
    Some(Tensor::from_dispatch(output))
}
#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{LayerNormConfig, LinearConfig};
    use burn::tensor::{Distribution, Tolerance};

    /// The devices with fused kernels, under autodiff.
    fn devices() -> Vec<Device> {
        let devices = vec![Device::flex().autodiff()];
        #[cfg(feature = "tch")]
        let devices = [devices, vec![Device::libtorch().autodiff()]].concat();
        devices
    }

    fn random<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), device).require_grad()
    }

    fn assert_close<const D: usize>(fused: Tensor<D>, composed: Tensor<D>, what: &str) {
        assert_eq!(fused.dims(), composed.dims(), "{what}");
        let (fused, composed) = (fused.into_data(), composed.into_data());
        fused.assert_approx_eq::<f32>(&composed, Tolerance::absolute(2e-5).set_relative(1e-4));
    }

    /// Checks a layer's fused forward (`forward(true)`) against its composed one: the output,
    /// and the gradients of the input, the weight (or scale) and the bias (or shift), under a
    /// loss that weighs each output differently.
    fn assert_matches_composed<const P: usize>(
        forward: impl Fn(bool) -> Tensor<3>,
        x: &Tensor<3>,
        weight: &Tensor<P>,
        bias: &Tensor<1>,
    ) {
        let mut loss_weights = None;
        let mut run = |fused: bool| {
            let output = forward(fused);
            let loss_weights = loss_weights
                .get_or_insert_with(|| Tensor::random(output.dims(), Distribution::Normal(0.0, 1.0), &output.device()))
                .clone();
            let grads = (output.clone() * loss_weights).sum().backward();
            let input_grads = (
                x.grad(&grads).unwrap(),
                weight.grad(&grads).unwrap(),
                bias.grad(&grads).unwrap(),
            );
            (output, input_grads)
        };
        let (fused, composed) = (run(true), run(false));
        assert_close(fused.0, composed.0, "output");
        assert_close(fused.1.0, composed.1.0, "input gradient");
        assert_close(fused.1.1, composed.1.1, "weight gradient");
        assert_close(fused.1.2, composed.1.2, "bias gradient");
    }

    #[test]
    fn layer_norm_matches_burns_values_and_gradients() {
        devices().iter().for_each(check_layer_norm);
    }

    fn check_layer_norm(device: &Device) {
        let mut norm = LayerNormConfig::new(24).with_epsilon(1e-5).init(device);
        // Non-trivial scale and shift, so their gradients and the input's differ from 1.
        norm.gamma = norm.gamma.map(|_| random([24], device));
        norm.beta = norm.beta.map(|beta| beta.map(|_| random([24], device)));
        let x = random([2, 5, 24], device);
        let (gamma, beta) = (norm.gamma.val(), norm.beta.as_ref().unwrap().val());
        let forward = |fused: bool| match fused {
            true => layer_norm(&norm, 1e-5, x.clone()),
            false => norm.forward(x.clone()),
        };
        assert_matches_composed(forward, &x, &gamma, &beta);
    }

    #[test]
    fn linear_matches_burns_values_and_gradients() {
        devices().iter().for_each(check_linear);
    }

    fn check_linear(device: &Device) {
        let mut layer = LinearConfig::new(12, 20).init(device);
        layer.bias = layer.bias.map(|bias| bias.map(|_| random([20], device)));
        let x = random([2, 5, 12], device);
        let (weight, bias) = (layer.weight.val(), layer.bias.as_ref().unwrap().val());
        let forward = |fused: bool| match fused {
            true => linear(&layer, x.clone()),
            false => layer.forward(x.clone()),
        };
        assert_matches_composed(forward, &x, &weight, &bias);
    }

    #[test]
    fn adamw_matches_burns_optimizer_over_several_updates() {
        devices().iter().for_each(check_adamw);
    }

    fn check_adamw(device: &Device) {
        use burn::optim::{AdamWConfig, Optimizer};
        // Optimizers run on the parameters' inner tensors.
        let device = device.clone().inner();
        let normal = |shape: [usize; 2]| Tensor::<2>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let burns = AdamWConfig::new()
            .with_beta_1(0.9)
            .with_beta_2(0.95)
            .with_epsilon(1e-8)
            .with_weight_decay(0.1)
            .build();
        let start = normal([7, 33]);
        let (mut expected, mut expected_state) = (start.clone(), None);
        let (mut param, mut moments) = (start, None);
        for time in 1..=3 {
            let grad = normal([7, 33]).mul_scalar(time as f32);
            (expected, expected_state) = burns.step(1e-2, expected, grad.clone(), expected_state);
            let step = AdamWStep {
                lr: 1e-2,
                beta_1: 0.9,
                beta_2: 0.95,
                epsilon: 1e-8,
                weight_decay: 0.1,
                time,
            };
            let (new_param, new_moments) = adamw(&param, &grad, moments.as_ref(), step).unwrap();
            let momentum = &expected_state.as_ref().unwrap().momentum;
            assert_close(new_param.clone(), expected.clone(), "parameter");
            assert_close(new_moments[0].clone(), momentum.moment_1.clone(), "first moment");
            assert_close(new_moments[1].clone(), momentum.moment_2.clone(), "second moment");
            (param, moments) = (new_param, Some(new_moments));
        }
    }

    #[test]
    fn gelu_matches_burns_values_and_gradients() {
        devices().iter().for_each(check_gelu);
    }

    fn check_gelu(device: &Device) {
        // Wide enough to reach the tails, where erf saturates.
        let x = Tensor::<3>::random([3, 7, 40], Distribution::Normal(0.0, 3.0), device).require_grad();
        let weights = Tensor::<3>::random([3, 7, 40], Distribution::Normal(0.0, 1.0), device);
        let run = |fused: bool| {
            let output = if fused {
                gelu(x.clone())
            } else {
                composed_gelu(x.clone())
            };
            let grads = (output.clone() * weights.clone()).sum().backward();
            (output, x.grad(&grads).unwrap())
        };
        let (fused, composed) = (run(true), run(false));
        assert_close(fused.0, composed.0, "output");
        assert_close(fused.1, composed.1, "x gradient");
    }

    /// The checks above on libtorch's CUDA kernels: run by `scripts/bench-gpu` (`cargo test
    /// -- --ignored cuda`); where no CUDA device answers, it says so and checks nothing.
    #[cfg(feature = "tch")]
    #[test]
    #[ignore = "needs a CUDA device: scripts/bench-gpu runs it"]
    fn cuda_kernels_match_burns_values_and_gradients() {
        if !crate::libtorch_cuda_available() {
            eprintln!("SKIPPED cuda_kernels_match_burns_values_and_gradients: libtorch finds no CUDA device");
            return;
        }
        let device = Device::libtorch_cuda(0).autodiff();
        check_layer_norm(&device);
        check_linear(&device);
        check_adamw(&device);
        check_gelu(&device);
    }
}
