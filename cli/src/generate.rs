//! `primer generate`: continue a prompt with a causal run, streaming tokens as they come.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::bail;
use primer_datasets::tokenizer::PrimerTokenizer;
use primer_model::generate::{GenerateOptions, Sampling, generate};

use crate::trained::TrainedRun;
use primer_options::BackendArgs;

/// Arguments of `primer generate`.
#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// A causal (clm) run directory.
    #[arg(long)]
    run: PathBuf,
    /// Text to continue; empty starts a new document.
    #[arg(long, default_value = "")]
    prompt: String,
    /// Tokens to generate at most; generation also stops at `[EOS]`.
    #[arg(long, default_value_t = 200)]
    max_new_tokens: usize,
    /// Sampling temperature; 0 always takes the most likely token.
    #[arg(long, default_value_t = 0.8)]
    temperature: f32,
    /// Sample among the k most likely tokens only.
    #[arg(long)]
    top_k: Option<usize>,
    /// Sample among the most likely tokens holding this much probability (nucleus sampling).
    #[arg(long)]
    top_p: Option<f32>,
    /// Seed of the sampler: the same seed gives the same text.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Samples to draw (seeds seed, seed+1, ...).
    #[arg(long, default_value_t = 1)]
    num_samples: usize,
    /// Re-run the whole context for every token instead of using the key/value cache (slower;
    /// for comparison).
    #[arg(long)]
    no_cache: bool,
    /// Keep generating past `[EOS]` (for benchmarks: always --max-new-tokens tokens).
    #[arg(long)]
    ignore_eos: bool,
    /// Keep only the end of a prompt longer than the model's context instead of failing.
    #[arg(long)]
    truncate: bool,
    #[command(flatten)]
    backend: BackendArgs,
}

impl GenerateArgs {
    fn sampling(&self) -> anyhow::Result<Sampling> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            bail!("--temperature {} must be 0 or more", self.temperature);
        }
        if self.top_k == Some(0) {
            bail!("--top-k 0 keeps no token: use 1 or more, or leave it out");
        }
        if let Some(p) = self.top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
            bail!("--top-p {p} must be in (0, 1]");
        }
        if self.max_new_tokens == 0 || self.num_samples == 0 {
            bail!("--max-new-tokens and --num-samples must be at least 1");
        }
        Ok(Sampling {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
        })
    }
}

/// Runs `primer generate`.
pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let sampling = args.sampling()?;
    let (_, device) = crate::devices::resolve(&args.backend)?;
    let run = TrainedRun::load(&args.run, &device)?;
    run.require(
        |info| info.generates(),
        "generate",
        "a model that predicts the next token",
    )?;
    let eos = run.tokenizer.specials().eos;
    // Documents follow an [EOS] in training: start the context with one.
    let mut prompt = run.tokenizer.encode(&args.prompt)?;
    let room = run.model.max_seq_len() - 1;
    if prompt.len() > room {
        if !args.truncate {
            bail!(
                "the prompt is {} tokens, more than the {room} the model reads: shorten it, or pass --truncate to keep its last {room}",
                prompt.len()
            );
        }
        prompt.drain(..prompt.len() - room);
    }
    prompt.insert(0, eos);
    let mut stdout = std::io::stdout().lock();
    for sample in 0..args.num_samples {
        if sample > 0 {
            writeln!(stdout, "\n---")?;
        }
        let options = GenerateOptions {
            max_new_tokens: args.max_new_tokens,
            sampling,
            seed: args.seed + sample as u64,
            stop: (!args.ignore_eos).then_some(eos),
            use_cache: !args.no_cache,
            prefix_prompt: run.config.objective.info().prefix_prompt(),
        };
        let mut text = TextStream::new(&run.tokenizer, &prompt[1..]);
        write!(stdout, "{}", text.printed)?;
        let started = Instant::now();
        let tokens = generate(&run.model, &prompt, &options, &device, |token| {
            let piece = text.push(token);
            // A closed stdout (`| head`) ends the output, not the program with a panic.
            let _ = write!(stdout, "{piece}").and_then(|_| stdout.flush());
        });
        writeln!(stdout, "{}", text.finish())?;
        let seconds = started.elapsed().as_secs_f64();
        eprintln!(
            "[{} tokens in {seconds:.2} s: {:.1} tokens/s, {}]",
            tokens.len(),
            tokens.len() as f64 / seconds,
            if args.no_cache { "no cache" } else { "key/value cache" }
        );
    }
    Ok(())
}

/// Decodes a growing token sequence into text for streaming: a byte-level token can end in the
/// middle of a character, so text is released only once it decodes cleanly.
struct TextStream<'a> {
    tokenizer: &'a PrimerTokenizer,
    tokens: Vec<u32>,
    printed: String,
}

impl<'a> TextStream<'a> {
    fn new(tokenizer: &'a PrimerTokenizer, prompt: &[u32]) -> Self {
        let printed = tokenizer.decode(prompt);
        Self {
            tokenizer,
            tokens: prompt.to_vec(),
            printed,
        }
    }

    /// Adds a token; returns the text it completes (maybe empty).
    fn push(&mut self, token: u32) -> String {
        self.tokens.push(token);
        let text = self.tokenizer.decode(&self.tokens);
        if text.ends_with('\u{FFFD}') || !text.starts_with(&self.printed) {
            return String::new();
        }
        let piece = text[self.printed.len()..].to_string();
        self.printed = text;
        piece
    }

    /// Whatever is left unprinted.
    fn finish(&mut self) -> String {
        let text = self.tokenizer.decode(&self.tokens);
        text.get(self.printed.len()..).unwrap_or_default().to_string()
    }
}
