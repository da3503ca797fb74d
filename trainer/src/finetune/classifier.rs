//! A classifier at work: texts framed for it, label probabilities in batches, and a fine-tuned
//! classifier loaded from its run directory.

use burn::module::Module;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Int, Tensor};
use primer_datasets::tokenizer::PrimerTokenizer;
use primer_model::Classifier;
use primer_model::tensors::{host_floats, ids};
use primer_objectives::ObjectiveInfo;

use super::FinetuneConfig;
use crate::error::TrainError;
use crate::run_dir::RunDir;

/// Token ids of a text as the classifier reads it, framed as the encoder's objective frames
/// it (`[CLS] text [SEP]` for masked-LM encoders). Texts longer than `max_len` lose their end.
pub fn encode_for_classifier(
    tokenizer: &PrimerTokenizer,
    objective: &ObjectiveInfo,
    text: &str,
    max_len: usize,
) -> Result<Vec<u32>, TrainError> {
    Ok(objective
        .framing
        .frame(tokenizer.specials(), tokenizer.encode(text)?, max_len))
}

/// Label probabilities of encoded texts, in batches of `batch_size`.
pub fn predict(model: &Classifier, encoded: &[Vec<u32>], pad_id: u32, batch_size: usize) -> Vec<Vec<f32>> {
    let device = model.devices()[0].clone();
    let mut probabilities = Vec::with_capacity(encoded.len());
    for chunk in encoded.chunks(batch_size.max(1)) {
        let rows: Vec<&[u32]> = chunk.iter().map(Vec::as_slice).collect();
        let (tokens, lengths) = pad(&rows, pad_id, &device);
        let probs = softmax(model.forward(tokens, &lengths), 1);
        let n_labels = probs.dims()[1];
        let values = host_floats(probs);
        probabilities.extend(values.chunks(n_labels).map(<[f32]>::to_vec));
    }
    probabilities
}

/// `[rows, longest]` ids padded on the right with `pad_id`, and each row's length.
pub(super) fn pad(rows: &[&[u32]], pad_id: u32, device: &Device) -> (Tensor<2, Int>, Vec<usize>) {
    let longest = rows.iter().map(|r| r.len()).max().unwrap_or(1);
    let padded = rows.iter().flat_map(|row| {
        row.iter()
            .copied()
            .chain(std::iter::repeat_n(pad_id, longest - row.len()))
    });
    let lengths = rows.iter().map(|r| r.len()).collect();
    (ids(padded, device).reshape([rows.len(), longest]), lengths)
}

/// A fine-tuned classifier loaded for prediction.
pub struct TrainedClassifier {
    /// Its config.
    pub config: FinetuneConfig,
    /// Its tokenizer.
    pub tokenizer: PrimerTokenizer,
    /// Its weights, without autodiff.
    pub model: Classifier,
}

impl TrainedClassifier {
    /// Loads the classifier in `run_dir` on `device`, checking its tokenizer against the one
    /// it was trained with.
    pub fn load(run_dir: &RunDir, device: &Device) -> Result<Self, TrainError> {
        let path = run_dir.finetune_config();
        let text = std::fs::read_to_string(&path).map_err(|_| {
            TrainError::Invalid(format!(
                "{} is not a fine-tuned classifier (no finetune.json): make one with `primer finetune`",
                run_dir.root.display()
            ))
        })?;
        let config: FinetuneConfig = serde_json::from_str(&text)
            .map_err(|e| TrainError::Invalid(format!("{}: corrupt config ({e}): fine-tune again", path.display())))?;
        let tokenizer = PrimerTokenizer::from_file(&run_dir.tokenizer())?;
        if tokenizer.fingerprint() != config.tokenizer_sha256 {
            return Err(TrainError::Invalid(format!(
                "{} is not the tokenizer this classifier was trained with: restore it, or fine-tune again",
                run_dir.tokenizer().display()
            )));
        }
        let model_path = run_dir.model();
        if !model_path.exists() {
            return Err(TrainError::Invalid(format!(
                "{} has no model.bpk: the fine-tuning did not finish; run it again",
                run_dir.root.display()
            )));
        }
        let model = crate::checkpoint::load_weights(
            config.classifier().init(config.model.init(device), device),
            &model_path,
        )
        .map_err(|e| TrainError::Invalid(format!("{} is corrupt: {e}: fine-tune again", model_path.display())))?;
        Ok(Self {
            config,
            tokenizer,
            model,
        })
    }
}
