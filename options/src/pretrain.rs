//! The options of a pre-training run: one flag and one config key each, with its default, and
//! the configs they resolve to.

use std::path::PathBuf;

use anyhow::bail;
use primer_datasets::tokenizer::TokenizerKind;
use primer_model::{FieldError, Positions, Precision, TransformerConfig};
use primer_objectives::ObjectiveConfig;
use primer_trainer::config::TrainConfig;

use crate::backend::BackendArgs;
use crate::corpus::CorpusArgs;
use crate::presets::ModelPreset;
use crate::schema::option_set;

option_set! {
    /// Every option of `pretrain` that decides a run; each is a flag and a config key.
    pub struct PretrainOptions {
        #[flatten]
        corpus: CorpusArgs,
        #[flatten]
        backend: BackendArgs,
        /// Pre-training objective and its settings, NAME[:SETTING=VALUE...]: mlm (BERT), clm
        /// (GPT), prefix (UniLM, T5) or electra (replaced-token detection); e.g. mlm:span,
        /// mlm:mask_rate=0.2, electra:generator_width=0.5. `primer objectives` lists every
        /// objective and its settings.
        objective: ObjectiveConfig,
        /// A corpus used as the validation split instead of a share of --corpus.
        valid: String,
        /// Fraction of documents held out for validation.
        valid_fraction: f64 = 0.05,
        /// A folder made by `primer prepare`, instead of --corpus.
        data: PathBuf,
        /// A tokenizer.json; without it one is trained on the corpus.
        tokenizer: PathBuf,
        /// A run (e.g. one `primer import` made) whose model, tokenizer and weights this run
        /// starts from: continued pre-training. The model options then come from it.
        init_from: PathBuf,
        /// Kind of tokenizer to train: bpe (byte-level), wordpiece or char.
        tokenizer_kind: TokenizerKind = TokenizerKind::Bpe,
        /// Vocabulary size of a trained tokenizer.
        vocab_size: usize = 8192,
        /// Optimizer steps.
        steps: u64 = 2000,
        /// A named architecture filling --layers, --d-model, --heads, --d-ff, --seq-len,
        /// --positions, --vocab-size and --tie-embeddings, each of which a flag or config key
        /// given beside it overrides: gpt2-small (124.4 M parameters: 12 layers, d-model 768,
        /// 12 heads, d-ff 3072, context 1024, learned positions, vocabulary 50257, tied head),
        /// gpt2-medium (354.8 M: 24 layers, 1024, 16 heads, 4096, context 1024, 50257),
        /// bert-base (108.9 M: BERT-base's encoder, 12 layers, 768, 12 heads, 3072, 512
        /// positions, 30522), bert-small (28.5 M: 4 layers, 512, 8 heads, 2048, 512 positions,
        /// 30522), tiny (1.8 M: the defaults). Sizes in primer's pre-LayerNorm Transformer.
        model: ModelPreset,
        /// Token budget instead of --steps: steps = tokens / (batch-size * grad-accum * seq-len).
        tokens: u64,
        /// Transformer blocks.
        layers: usize = 4,
        /// Model width.
        d_model: usize = 128,
        /// Attention heads; must divide --d-model.
        heads: usize = 4,
        /// MLP width.
        d_ff: usize; derived "4 * d-model",
        /// Tokens per sequence.
        seq_len: usize = 64,
        /// Position scheme: rotary or learned.
        positions: Positions = Positions::Rotary,
        /// Tie the LM head to the token embedding.
        tie_embeddings: bool = true,
        /// Sequences per micro-batch.
        batch_size: usize = 12,
        /// Peak learning rate.
        lr: f64 = 1e-3,
        /// Final learning rate of the cosine decay.
        min_lr: f64; derived "lr / 10",
        /// Linear warm-up steps.
        warmup_steps: u64 = 100,
        /// AdamW weight decay on weight matrices.
        weight_decay: f64 = 0.1,
        /// AdamW beta 1.
        beta1: f64 = 0.9,
        /// AdamW beta 2.
        beta2: f64 = 0.99,
        /// Global gradient-norm clipping; 0 disables.
        grad_clip: f64 = 1.0,
        /// Micro-batches per optimizer step.
        grad_accum: usize = 1,
        /// Dropout.
        dropout: f64 = 0.0,
        /// Validate every N steps.
        eval_every: u64 = 250,
        /// Minimal pairs scored at every validation, as `primer minimal-pairs --pairs` takes
        /// them (blimp, FILE.jsonl or DIR): `minimal_pairs_accuracy` in metrics.jsonl.
        minimal_pairs: String,
        /// How many minimal pairs: a fixed subset drawn with the run's seed.
        minimal_pairs_limit: usize = 1000,
        /// Validation batches per evaluation.
        eval_batches: usize = 20,
        /// Checkpoint every N steps.
        checkpoint_every: u64 = 500,
        /// Checkpoints kept.
        keep_checkpoints: usize = 3,
        /// Seed of initialisation, data split and order, masks and dropout.
        seed: u64 = 1337,
        /// The dtype of the model's matrix products and activations: f32, bf16 or f16 (with
        /// dynamic loss scaling). Weights, optimizer state, norms, softmax and losses stay f32;
        /// a backend that cannot compute in it refuses the run.
        precision: Precision = Precision::F32,
    }
}

impl PretrainOptions {
    /// Builds and checks the optimisation and model configs (the model's vocabulary is set
    /// later); errors name the flags at fault.
    pub fn configs(&self, vocab_size: usize) -> anyhow::Result<(TrainConfig, TransformerConfig)> {
        let options = self.resolved();
        let lr = options.lr();
        let mut train = TrainConfig {
            steps: options.steps(),
            batch_size: options.batch_size(),
            grad_accum: options.grad_accum(),
            seq_len: options.seq_len(),
            lr,
            min_lr: options.min_lr.unwrap_or(lr / 10.0),
            warmup_steps: options.warmup_steps(),
            weight_decay: options.weight_decay(),
            beta1: options.beta1(),
            beta2: options.beta2(),
            grad_clip: options.grad_clip(),
            eval_every: options.eval_every(),
            eval_batches: options.eval_batches(),
            checkpoint_every: options.checkpoint_every(),
            keep_checkpoints: options.keep_checkpoints(),
            seed: options.seed(),
            precision: options.precision(),
        };
        if let Some(tokens) = options.tokens {
            if options.steps.is_some() {
                bail!("both --steps and --tokens given: give one budget");
            }
            train.steps = tokens.div_ceil(train.tokens_per_step().max(1));
        }
        train.validate().map_err(flag_error)?;
        let d_model = options.d_model();
        let model = TransformerConfig::new(vocab_size)
            .with_n_layers(options.layers())
            .with_d_model(d_model)
            .with_n_heads(options.heads())
            .with_d_ff(options.d_ff.unwrap_or(4 * d_model))
            .with_max_seq_len(train.seq_len)
            .with_dropout(options.dropout())
            .with_positions(options.positions())
            .with_tie_embeddings(options.tie_embeddings());
        model.validate().map_err(flag_error)?;
        Ok((train, model))
    }
}

/// A config error said with the flags that set its fields (`n_heads` is `--heads`).
pub fn flag_error(error: FieldError) -> anyhow::Error {
    anyhow::Error::msg(error.named(|field| Some(flag_of(field))))
}

/// The flag that sets a config field: its name with dashes, except where the model's name
/// differs from the option's.
fn flag_of(field: &str) -> String {
    match field {
        "n_layers" => "--layers".into(),
        "n_heads" => "--heads".into(),
        "max_seq_len" => "--seq-len".into(),
        _ => format!("--{}", field.replace('_', "-")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_build_the_models_own_defaults() {
        let (_, model) = PretrainOptions::default().configs(100).unwrap();
        let own = TransformerConfig::new(100).with_max_seq_len(64);
        assert_eq!(
            serde_json::to_value(&model).unwrap(),
            serde_json::to_value(&own).unwrap(),
            "the options' model defaults and TransformerConfig's have drifted apart"
        );
    }

    #[test]
    fn the_schema_lists_every_option_once_with_its_default_and_choices() {
        use clap::Args;
        let schema = crate::options_of(&PretrainOptions::augment_args(clap::Command::new("pretrain")));
        let keys: Vec<&str> = schema.iter().map(|spec| spec.key.as_str()).collect();
        let mut unique = keys.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), keys.len(), "{keys:?}");
        // Every key the struct serialises is in the schema.
        let everything: PretrainOptions = serde_json::from_value(serde_json::json!({
            "corpus": ["a"], "objective": "clm", "steps": 5, "lossy": true, "backend": "flex",
        }))
        .unwrap();
        for key in serde_json::to_value(&everything).unwrap().as_object().unwrap().keys() {
            assert!(keys.contains(&key.as_str()), "{key} is not in the schema");
        }
        let spec = |key: &str| schema.iter().find(|spec| spec.key == key).unwrap().clone();
        let seq_len = spec("seq-len");
        assert_eq!((seq_len.kind, seq_len.default_text.as_deref()), ("integer", Some("64")));
        let min_lr = spec("min-lr");
        assert_eq!(
            (min_lr.kind, min_lr.default_text.as_deref()),
            ("number", Some("lr / 10"))
        );
        let positions = spec("positions");
        assert_eq!(
            (positions.kind, positions.choices.clone()),
            ("choice", vec!["rotary".into(), "learned".into()])
        );
        let objective = spec("objective");
        assert_eq!(
            (objective.kind, objective.choices.len()),
            ("objective", primer_objectives::registry::names().len())
        );
        assert_eq!((spec("corpus").kind, spec("corpus").list), ("text", true));
        assert_eq!((spec("init-from").kind, spec("tie-embeddings").kind), ("path", "bool"));
    }

    #[test]
    fn options_go_to_the_command_line_and_back_unchanged() {
        use clap::Parser;
        #[derive(Parser)]
        struct Command {
            #[command(flatten)]
            options: PretrainOptions,
        }
        let options: PretrainOptions = serde_json::from_value(serde_json::json!({
            "corpus": ["a.txt", "b.txt"], "lossy": true, "backend": "tch", "objective": "mlm:span:mask_rate=0.2",
            "positions": "learned", "tie-embeddings": false, "lr": 3e-4, "seq-len": 32, "data": "prepared",
        }))
        .unwrap();
        let args = std::iter::once("primer".to_string()).chain(options.to_args());
        assert_eq!(Command::parse_from(args).options, options);
    }
}
