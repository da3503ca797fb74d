//! Whether a training run fits in the machine's memory, checked from the model's and batch's
//! sizes before anything is allocated: a run that cannot fit fails with one line instead of an
//! allocation failure midway (an abort, with a run directory left saying "running").

use primer_model::TransformerConfig;
pub use primer_model::memory::machine_bytes;

use crate::error::TrainError;

/// Bytes per parameter while training: f32 weights, gradients and AdamW's two moments, and
/// the host copy and record a model is initialised through.
const BYTES_PER_PARAM: f64 = 24.0;
/// f32 values kept for the backward pass per token and layer, in units of `d_model` (inputs
/// of the norms, projections, attention and residuals), besides `2 d_ff` for the MLP and
/// `n_heads x T` attention probabilities on the backends that keep them.
const SAVED_PER_TOKEN_LAYER: f64 = 16.0;
/// f32 values per token and vocabulary entry: logits, their softmax and its gradient.
const LOGIT_COPIES: f64 = 3.0;

/// The memory a training step of `model` on micro-batches of `batch_size` sequences of
/// `seq_len` tokens needs, bytes (an estimate, in floating point so absurd sizes cannot
/// overflow).
pub fn training_bytes(model: &TransformerConfig, batch_size: usize, seq_len: usize) -> f64 {
    let (d, f, v, l) = (
        model.d_model as f64,
        model.d_ff as f64,
        model.vocab_size as f64,
        model.n_layers as f64,
    );
    let params = v * d * if model.tie_embeddings { 1.0 } else { 2.0 } + l * (4.0 * d * d + 2.0 * d * f);
    let tokens = batch_size as f64 * seq_len as f64;
    let per_layer = SAVED_PER_TOKEN_LAYER * d + 2.0 * f + model.n_heads as f64 * seq_len as f64;
    let activations = tokens * l * per_layer + tokens * v * LOGIT_COPIES;
    params * BYTES_PER_PARAM + activations * 4.0
}

/// Fails, naming the sizes to lower, when a training step would need more than the machine has.
pub fn check_fits(model: &TransformerConfig, batch_size: usize, seq_len: usize) -> Result<(), TrainError> {
    let (Some(available), needed) = (machine_bytes(), training_bytes(model, batch_size, seq_len)) else {
        return Ok(());
    };
    if needed <= available {
        return Ok(());
    }
    Err(TrainError::Invalid(format!(
        "this run needs about {:.1} GB to train ({} layers, d_model {}, d_ff {}, vocabulary {}, batch {} x {} tokens), more than the machine's {:.1} GB: lower --layers, --d-model, --batch-size, --seq-len or --vocab-size (or use --grad-accum for a larger batch)",
        needed / 1e9,
        model.n_layers,
        model.d_model,
        model.d_ff,
        model.vocab_size,
        batch_size,
        seq_len,
        available / 1e9
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_config_fits_and_absurd_sizes_do_not() {
        let standard = TransformerConfig::new(8192)
            .with_n_layers(4)
            .with_d_model(256)
            .with_n_heads(4)
            .with_d_ff(1024);
        // Measured peak of the standard config: 0.67 GB (docs/benchmarks.md).
        let estimate = training_bytes(&standard, 16, 128) / 1e9;
        assert!((0.3..1.5).contains(&estimate), "{estimate} GB");
        let huge = standard.clone().with_d_model(100_000).with_d_ff(400_000);
        let err = check_fits(&huge, 12, 64).unwrap_err().to_string();
        assert!(err.contains("lower --layers, --d-model"), "{err}");
        let deep = standard.clone().with_n_layers(1_000_000);
        assert!(check_fits(&deep, 12, 64).is_err());
        assert!(check_fits(&standard, 100_000_000, 64).is_err());
        assert!(check_fits(&standard, 12, 64).is_ok());
    }
}
