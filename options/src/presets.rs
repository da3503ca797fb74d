//! Named model sizes (`--model gpt2-small`): the architecture options of a published model,
//! each of which a flag or config key given beside the name overrides.

use primer_model::Positions;
use serde::{Deserialize, Serialize};

use crate::PretrainOptions;

/// A named architecture: the sizes of a published model, in primer's Transformer (pre-LayerNorm
/// blocks with a final LayerNorm and biases everywhere, GPT-2's layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelPreset {
    /// GPT-2 small: 12 layers, width 768, 12 heads, context 1024, GPT-2's 50257 tokens.
    Gpt2Small,
    /// GPT-2 medium: 24 layers, width 1024, 16 heads, context 1024, GPT-2's 50257 tokens.
    Gpt2Medium,
    /// BERT-base's encoder: 12 layers, width 768, 12 heads, 512 positions, 30522 tokens.
    BertBase,
    /// BERT-small (Turc et al., 2019): 4 layers, width 512, 8 heads, 512 positions, 30522 tokens.
    BertSmall,
    /// primer's defaults, for smoke tests: 4 layers, width 128, 4 heads, context 64.
    Tiny,
}

impl ModelPreset {
    /// Every preset, in the order `--help` lists them.
    pub const ALL: [ModelPreset; 5] = [
        ModelPreset::Gpt2Small,
        ModelPreset::Gpt2Medium,
        ModelPreset::BertBase,
        ModelPreset::BertSmall,
        ModelPreset::Tiny,
    ];

    /// The architecture options the preset sets; every other option is unset.
    pub fn options(self) -> PretrainOptions {
        // (layers, d_model, heads, d_ff, seq_len, positions, vocab_size)
        let (layers, d_model, heads, d_ff, seq_len, positions, vocab_size) = match self {
            ModelPreset::Gpt2Small => (12, 768, 12, 3072, 1024, Positions::Learned, 50257),
            ModelPreset::Gpt2Medium => (24, 1024, 16, 4096, 1024, Positions::Learned, 50257),
            ModelPreset::BertBase => (12, 768, 12, 3072, 512, Positions::Learned, 30522),
            ModelPreset::BertSmall => (4, 512, 8, 2048, 512, Positions::Learned, 30522),
            ModelPreset::Tiny => (4, 128, 4, 512, 64, Positions::Rotary, 8192),
        };
        PretrainOptions {
            layers: Some(layers),
            d_model: Some(d_model),
            heads: Some(heads),
            d_ff: Some(d_ff),
            seq_len: Some(seq_len),
            positions: Some(positions),
            vocab_size: Some(vocab_size),
            tie_embeddings: Some(true),
            ..PretrainOptions::default()
        }
    }
}

impl PretrainOptions {
    /// The options with `--model`'s sizes filling the architecture options not given.
    pub fn resolved(&self) -> PretrainOptions {
        match self.model {
            Some(preset) => self.clone().or(preset.options()),
            None => self.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Module;
    use burn::tensor::Device;

    /// The model a preset builds with the vocabulary its name promises.
    fn model_of(preset: ModelPreset) -> primer_model::TransformerConfig {
        let options = PretrainOptions {
            model: Some(preset),
            ..PretrainOptions::default()
        };
        let vocab = options.resolved().vocab_size();
        options.configs(vocab).unwrap().1
    }

    /// GPT-2 small as Hugging Face counts it (`GPT2Model`, tied head): 124,439,808. primer's
    /// block has GPT-2's parameters one for one (fused QKV and output projection with biases,
    /// MLP with biases, two LayerNorms), and its final LayerNorm is GPT-2's `ln_f`, so the
    /// count is the same; the model primer builds is counted, not only the formula.
    #[test]
    fn gpt2_small_has_gpt2s_parameter_count() {
        let config = model_of(ModelPreset::Gpt2Small);
        assert_eq!(
            (
                config.vocab_size,
                config.max_seq_len,
                config.positions,
                config.tie_embeddings
            ),
            (50257, 1024, Positions::Learned, true)
        );
        assert_eq!(config.init(&Device::flex()).num_params(), 124_439_808);
        assert_eq!(model_of(ModelPreset::Gpt2Medium).num_params(), 354_823_168);
    }

    /// BERT-base's `BertModel` has 109,482,240 parameters: primer's has the same embeddings,
    /// blocks and one LayerNorm's worth of norm (BERT's after the embeddings, primer's after the
    /// last block), but no token-type embedding (2 x 768 = 1,536) and no pooler
    /// (768 x 768 + 768 = 590,592): 108,890,112.
    #[test]
    fn bert_base_has_berts_encoder_parameters() {
        let config = model_of(ModelPreset::BertBase);
        let parameters = config.init(&Device::flex()).num_params();
        assert_eq!(parameters, 108_890_112);
        assert_eq!(parameters + 2 * 768 + (768 * 768 + 768), 109_482_240);
    }

    #[test]
    fn a_given_flag_or_config_key_wins_over_the_preset() {
        let options = PretrainOptions {
            model: Some(ModelPreset::Gpt2Small),
            layers: Some(2),
            seq_len: Some(128),
            ..PretrainOptions::default()
        };
        let (train, model) = options.configs(50257).unwrap();
        assert_eq!((model.n_layers, model.d_model, model.n_heads), (2, 768, 12));
        assert_eq!((train.seq_len, model.max_seq_len, model.d_ff), (128, 128, 3072));
        // A config file's keys are layered under the flags the same way.
        let from_file: PretrainOptions = toml::from_str("model = \"bert-small\"\nheads = 4\n").unwrap();
        let (_, model) = from_file.configs(30522).unwrap();
        assert_eq!((model.n_layers, model.d_model, model.n_heads), (4, 512, 4));
    }

    #[test]
    fn tiny_is_the_defaults() {
        let tiny = PretrainOptions {
            model: Some(ModelPreset::Tiny),
            ..PretrainOptions::default()
        };
        let model = |options: &PretrainOptions| serde_json::to_value(options.configs(100).unwrap().1).unwrap();
        assert_eq!(model(&tiny), model(&PretrainOptions::default()));
        assert_eq!(tiny.resolved().vocab_size(), PretrainOptions::default().vocab_size());
    }

    /// `--help` lists each preset with its size; the sizes are the models' own.
    #[test]
    fn the_help_lists_every_preset_with_its_size() {
        use clap::Args;
        let command = PretrainOptions::augment_args(clap::Command::new("pretrain"));
        let spec = crate::options_of(&command)
            .into_iter()
            .find(|spec| spec.key == "model")
            .unwrap();
        assert_eq!(spec.kind, "choice");
        for preset in ModelPreset::ALL {
            let name = crate::schema::OptionValue::flag_text(&preset);
            let millions = model_of(preset).num_params() as f64 / 1e6;
            let listed = format!("{name} ({millions:.1} M");
            assert!(spec.help.contains(&listed), "`{listed}` is not in: {}", spec.help);
            assert!(spec.choices.contains(&name), "{name}");
        }
    }
}
