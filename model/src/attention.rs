//! Multi-head self-attention with a fused QKV projection (GPT-2's layout).

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Initializer, Linear, LinearConfig, RotaryEncoding, RotaryEncodingConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Bool, DType, Device, Int, Tensor, TensorData};

use crate::config::{Positions, TransformerConfig};
use primer_kernels::{self as fused, AttentionMode};

/// Self-attention over a sequence, bidirectional or causal.
#[derive(Module, Debug)]
pub struct SelfAttention {
    /// Query, key and value projections in one matrix: `[d_model, 3 * d_model]`.
    pub qkv: Linear,
    /// Output projection (a residual projection: scaled init).
    pub proj: Linear,
    attn_dropout: Dropout,
    resid_dropout: Dropout,
    rotary: Option<RotaryEncoding>,
    n_heads: usize,
    /// The features of each head that `rotary` rotates, the first ones.
    rotary_dims: usize,
}

impl SelfAttention {
    /// A new attention layer for `config`; `residual_std` initialises the output projection.
    pub fn new(config: &TransformerConfig, residual_std: f64, device: &Device) -> Self {
        let normal = |std| Initializer::Normal { mean: 0.0, std };
        let d = config.d_model;
        let rotary = (config.positions == Positions::Rotary)
            .then(|| RotaryEncodingConfig::new(config.max_seq_len, config.rotary_dims()).init(device));
        Self {
            qkv: crate::zero_bias(
                LinearConfig::new(d, 3 * d)
                    .with_initializer(normal(config.init_std))
                    .init(device),
            ),
            proj: crate::zero_bias(
                LinearConfig::new(d, d)
                    .with_initializer(normal(residual_std))
                    .init(device),
            ),
            attn_dropout: DropoutConfig::new(config.dropout).init(),
            resid_dropout: DropoutConfig::new(config.dropout).init(),
            rotary,
            n_heads: config.n_heads,
            rotary_dims: config.rotary_dims(),
        }
    }

    /// # Shapes
    /// - x: `[batch, seq, d_model]`
    /// - output: `[batch, seq, d_model]`
    pub fn forward(&self, x: Tensor<3>, mode: AttentionMode) -> Tensor<3> {
        self.attend(x, mode, None, None)
    }

    /// Attention that ignores padding keys.
    ///
    /// # Shapes
    /// - x: `[batch, seq, d_model]`
    /// - padding: `[batch, seq]`, true at padding positions
    /// - output: `[batch, seq, d_model]`
    pub fn forward_padded(&self, x: Tensor<3>, mode: AttentionMode, padding: Tensor<2, Bool>) -> Tensor<3> {
        self.attend(x, mode, Some(padding), None)
    }

    /// Attention of new positions over the cached ones and themselves, causal or with a prefix
    /// (lengths counted from the first cached position); appends the new keys and values to
    /// `cache`.
    ///
    /// # Shapes
    /// - x: `[batch, new, d_model]`, the positions after the `cache.len()` cached ones
    /// - output: `[batch, new, d_model]`
    pub fn forward_cached(&self, x: Tensor<3>, mode: AttentionMode, cache: &mut LayerKv) -> Tensor<3> {
        self.attend(x, mode, None, Some(cache))
    }

    fn attend(
        &self,
        x: Tensor<3>,
        mode: AttentionMode,
        padding: Option<Tensor<2, Bool>>,
        cache: Option<&mut LayerKv>,
    ) -> Tensor<3> {
        let [batch, seq, d_model] = x.dims();
        let head_dim = d_model / self.n_heads;
        let start = cache.as_ref().map_or(0, |cache| cache.len());
        let qkv = fused::linear(&self.qkv, x);
        // Without padding, a cache, attention dropout or partial rotary, a fused kernel may do
        // the rest.
        let whole_rotary = self.rotary.is_none() || self.rotary_dims == head_dim;
        if padding.is_none() && cache.is_none() && self.attn_dropout.prob == 0.0 && whole_rotary {
            // [positions, head_dim, (cos, sin)] -> [seq, head_dim, 2]
            let angles = self
                .rotary
                .as_ref()
                .map(|rotary| rotary.freq_complex.clone().narrow(0, 0, seq));
            if let Some(context) = fused::attention(&qkv, angles, self.n_heads, &mode) {
                return self.resid_dropout.forward(fused::linear(&self.proj, context));
            }
        }
        let heads = |t: Tensor<3>| {
            // [batch, seq, d_model] -> [batch, heads, seq, head_dim]
            t.reshape([batch, seq, self.n_heads, head_dim]).swap_dims(1, 2)
        };
        let mut qkv = qkv.chunk(3, 2).into_iter().map(heads);
        let (mut q, mut k, mut v) = (qkv.next().unwrap(), qkv.next().unwrap(), qkv.next().unwrap());
        if let Some(rotary) = &self.rotary {
            q = rotate_first(rotary, q, start, self.rotary_dims);
            k = rotate_first(rotary, k, start, self.rotary_dims);
        }
        if let Some(cache) = cache {
            (k, v) = cache.append(k, v);
        }
        let keys = k.dims()[2];
        // [batch, heads, seq, keys]
        let mut scores = q.matmul(k.swap_dims(2, 3)).mul_scalar((head_dim as f64).powf(-0.5));
        if let Some(hidden) = hidden_keys(&mode, batch, seq, keys, start, &scores.device()) {
            // [batch, seq, keys] -> [batch, heads, seq, keys]
            let hidden = hidden
                .reshape([batch, 1, seq, keys])
                .expand([batch, self.n_heads, seq, keys]);
            scores = scores.mask_fill(hidden, f32::NEG_INFINITY);
        }
        if let Some(padding) = padding {
            // [batch, keys] -> [batch, heads, seq, keys]
            let hidden = padding
                .reshape([batch, 1, 1, keys])
                .expand([batch, self.n_heads, seq, keys]);
            scores = scores.mask_fill(hidden, f32::NEG_INFINITY);
        }
        // The softmax in f32 (a no-op there), its weights back in the compute dtype.
        let dtype = scores.dtype();
        let weights = self
            .attn_dropout
            .forward(softmax(scores.cast(DType::F32), 3).cast(dtype));
        // [batch, heads, seq, head_dim] -> [batch, seq, d_model]
        let context = weights.matmul(v).swap_dims(1, 2).reshape([batch, seq, d_model]);
        self.resid_dropout.forward(fused::linear(&self.proj, context))
    }
}

/// [`rotate`] of the first `dims` features of each head; the rest pass unchanged.
///
/// # Shapes
/// - x: `[batch, heads, seq, head_dim]`
/// - output: `[batch, heads, seq, head_dim]`
fn rotate_first(rotary: &RotaryEncoding, x: Tensor<4>, start: usize, dims: usize) -> Tensor<4> {
    let head_dim = x.dims()[3];
    if dims == head_dim {
        return rotate(rotary, x, start);
    }
    let rotated = rotate(rotary, x.clone().narrow(3, 0, dims), start);
    Tensor::cat(vec![rotated, x.narrow(3, dims, head_dim - dims)], 3)
}

/// Rotary positions for positions `start..start + seq`: `x cos + rotate_pairs(x) sin`, where
/// `rotate_pairs` maps each pair `(a, b)` of the head width to `(-b, a)`. This is the rotation
/// of Burn's `RotaryEncoding::apply`, with the angles it stores, in element-wise products
/// rather than its batched `[.., 2] x [2, 4]` matmul and sum, which cost several times more.
///
/// # Shapes
/// - x: `[batch, heads, seq, head_dim]`
/// - output: `[batch, heads, seq, head_dim]`
fn rotate(rotary: &RotaryEncoding, x: Tensor<4>, start: usize) -> Tensor<4> {
    let [batch, heads, seq, head_dim] = x.dims();
    // [positions, head_dim, (cos, sin)] -> [1, 1, seq, head_dim] each
    let angles = rotary.freq_complex.clone().narrow(0, start, seq).cast(x.dtype());
    let cos = angles.clone().narrow(2, 0, 1).reshape([1, 1, seq, head_dim]);
    let sin = angles.narrow(2, 1, 1).reshape([1, 1, seq, head_dim]);
    // [batch, heads, seq, head_dim / 2, 2]: (a, b) -> (-b, a)
    let pairs = x.clone().reshape([batch, heads, seq, head_dim / 2, 2]);
    let rotated = Tensor::cat(vec![pairs.clone().narrow(4, 1, 1).neg(), pairs.narrow(4, 0, 1)], 4)
        .reshape([batch, heads, seq, head_dim]);
    x * cos + rotated * sin
}

/// One layer's keys and values of the positions decoded so far.
#[derive(Debug, Clone, Default)]
pub struct LayerKv {
    /// `[batch, heads, len, head_dim]` each; `None` before the first call.
    keys_values: Option<(Tensor<4>, Tensor<4>)>,
}

impl LayerKv {
    /// Positions cached.
    pub fn len(&self) -> usize {
        self.keys_values.as_ref().map_or(0, |(keys, _)| keys.dims()[2])
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `[batch, heads, new, head_dim]` keys and values; returns all of them.
    fn append(&mut self, keys: Tensor<4>, values: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let all = match self.keys_values.take() {
            Some((past_keys, past_values)) => (
                Tensor::cat(vec![past_keys, keys], 2),
                Tensor::cat(vec![past_values, values], 2),
            ),
            None => (keys, values),
        };
        self.keys_values = Some(all.clone());
        all
    }
}

/// `[batch, queries, keys]` (batch 1 where every row is alike), true where `mode` hides a key
/// from a query; `None` when it hides none. Query `i` sits at position `start + i`, key `j` at
/// position `j`.
fn hidden_keys(
    mode: &AttentionMode,
    batch: usize,
    queries: usize,
    keys: usize,
    start: usize,
    device: &Device,
) -> Option<Tensor<3, Bool>> {
    let future = || causal_mask(queries, keys, start, device).reshape([1, queries, keys]);
    match mode {
        AttentionMode::Bidirectional => None,
        AttentionMode::Causal if queries == 1 => None,
        AttentionMode::Causal => Some(future().expand([batch, queries, keys])),
        AttentionMode::Prefix(lengths) => {
            // A later key stays visible when it is inside the row's prefix.
            let lengths = lengths.iter().map(|&length| length as i64).collect::<Vec<_>>();
            let lengths = Tensor::<1, Int>::from_data(TensorData::new(lengths, [batch]), device);
            let positions = Tensor::<1, Int>::arange(0..keys as i64, device);
            let outside = positions
                .reshape([1, 1, keys])
                .greater_equal(lengths.reshape([batch, 1, 1]));
            Some(
                future()
                    .expand([batch, queries, keys])
                    .bool_and(outside.expand([batch, queries, keys])),
            )
        }
    }
}

/// `[queries, keys]`, true where a query would see a later key; query `i` sits at position
/// `start + i` and key `j` at position `j`.
pub fn causal_mask(queries: usize, keys: usize, start: usize, device: &Device) -> Tensor<2, Bool> {
    Tensor::<2, Bool>::tril_mask([queries, keys], start as i64, device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tolerance};

    #[test]
    fn rotate_is_burns_rotary_encoding() {
        let device = Device::flex();
        let rotary = RotaryEncodingConfig::new(16, 8).init(&device);
        let x = Tensor::<4>::random([2, 3, 5, 8], Distribution::Normal(0.0, 1.0), &device);
        for start in [0, 4] {
            rotate(&rotary, x.clone(), start)
                .into_data()
                .assert_approx_eq::<f32>(&rotary.apply(x.clone(), start).into_data(), Tolerance::default());
        }
    }

    /// The devices with fused kernels, under autodiff.
    #[cfg_attr(feature = "tch", allow(deprecated))]
    fn fused_devices() -> Vec<Device> {
        let devices = vec![Device::flex().autodiff()];
        #[cfg(feature = "tch")]
        let devices = [devices, vec![Device::libtorch().autodiff()]].concat();
        devices
    }

    /// Equal up to float32 rounding. The weights below are sharp (std 0.3), and the draws are
    /// not fixed (other tests draw from the same backend's generator at the same time): the two
    /// paths sum in different orders, and some draws differ by a few 1e-5; a wrong layout or
    /// mask differs by 1e-1.
    fn assert_close<const D: usize>(fused: Tensor<D>, composed: Tensor<D>, what: &str) {
        assert_eq!(fused.dims(), composed.dims(), "{what}");
        let tolerance = Tolerance::absolute(1e-4).set_relative(1e-3);
        fused
            .into_data()
            .assert_approx_eq::<f32>(&composed.into_data(), tolerance);
    }

    /// The largest difference of `low` (any dtype) from `reference`.
    fn max_diff<const D: usize>(low: Tensor<D>, reference: Tensor<D>) -> f32 {
        (low.cast(DType::F32) - reference).abs().max().into_scalar::<f32>()
    }

    /// The fused kernel (see primer-kernels) against the composed path this module writes:
    /// outputs and gradients, in every mode and position scheme.
    #[test]
    fn attention_matches_the_composed_path() {
        for device in fused_devices() {
            check_attention(&device, DType::F32);
        }
    }

    /// libtorch's kernels take bfloat16 too (mixed precision), and agree with the composed
    /// path computed in bfloat16 up to its rounding.
    #[cfg(feature = "tch")]
    #[test]
    #[allow(deprecated)]
    fn libtorch_attention_matches_the_composed_path_in_bf16() {
        check_attention(&Device::libtorch().autodiff(), DType::BF16);
    }

    /// The same checks on libtorch's CUDA kernels (memory-efficient attention), in float32 and
    /// bfloat16: run by `scripts/bench-gpu`; where no CUDA device answers, it says so and checks
    /// nothing.
    #[cfg(feature = "tch")]
    #[test]
    #[ignore = "needs a CUDA device: scripts/bench-gpu runs it"]
    #[allow(deprecated)]
    fn cuda_attention_matches_the_composed_path() {
        if !primer_kernels::libtorch_cuda_available() {
            eprintln!("SKIPPED cuda_attention_matches_the_composed_path: libtorch finds no CUDA device");
            return;
        }
        let device = Device::libtorch_cuda(0).autodiff();
        check_attention(&device, DType::F32);
        check_attention(&device, DType::BF16);
    }

    /// [`attention_matches_the_composed_path`] on `device`, with the input in `dtype`. In
    /// float32 the fused kernel matches the composed path up to rounding; in a lower precision
    /// both round differently (the kernel keeps its scores in f32, the composed path rounds them
    /// to bf16), so the fused kernel must come as close to the float32 composed path as the
    /// composed path in that precision does (within twice its error), where a wrong layout or
    /// mask would be off by the size of the values.
    fn check_attention(device: &Device, dtype: DType) {
        for positions in [Positions::Rotary, Positions::Learned] {
            let config = TransformerConfig::new(50)
                .with_d_model(24)
                .with_n_heads(3)
                .with_max_seq_len(8)
                .with_positions(positions)
                // Weights large enough for sharp attention, where errors would show.
                .with_init_std(0.3);
            let attention = SelfAttention::new(&config, 0.3, device);
            let x = Tensor::<3>::random([2, 6, 24], Distribution::Normal(0.0, 1.0), device).require_grad();
            let weights = Tensor::<3>::random([2, 6, 24], Distribution::Normal(0.0, 1.0), device);
            // A padding mask that hides nothing sends attention down the composed path.
            let no_padding = Tensor::<2>::zeros([2, 6], device).equal_elem(1.0);
            // The prefix mode: row 0 reads its first 3 positions both ways, row 1 none.
            let prefix = AttentionMode::Prefix(vec![3, 0]);
            for mode in [AttentionMode::Bidirectional, AttentionMode::Causal, prefix] {
                let run = |fused: bool, dtype: DType| {
                    let input = x.clone().cast(dtype);
                    let output = match fused {
                        true => attention.forward(input, mode.clone()),
                        false => attention.forward_padded(input, mode.clone(), no_padding.clone()),
                    };
                    let grads = (output.clone() * weights.clone().cast(dtype)).sum().backward();
                    let qkv_weight = attention.qkv.weight.val().grad(&grads).unwrap();
                    [
                        output.cast(DType::F32),
                        x.grad(&grads).unwrap(),
                        qkv_weight.reshape([1, 24, 72]),
                    ]
                };
                let what = format!("{positions:?} {mode:?} {dtype:?} on {device:?}");
                let (fused, composed) = (run(true, dtype), run(false, dtype));
                let names = ["output", "x gradient", "qkv weight gradient"];
                if dtype == DType::F32 {
                    for ((fused, composed), name) in fused.into_iter().zip(composed).zip(names) {
                        assert_close(fused, composed, &format!("{name}, {what}"));
                    }
                    continue;
                }
                let reference = run(false, DType::F32);
                for (((fused, composed), reference), name) in fused.into_iter().zip(composed).zip(reference).zip(names)
                {
                    let (fused_error, composed_error) =
                        (max_diff(fused, reference.clone()), max_diff(composed, reference));
                    assert!(
                        fused_error <= 2.0 * composed_error + 1e-3,
                        "{name}, {what}: fused off f32 by {fused_error}, composed by {composed_error}"
                    );
                }
            }
        }
    }
}
