//! Minimal pairs in a comparison: every pre-trained model scored on them beside its untrained
//! twin (same size, same seed's initial weights), and each difference with a paired bootstrap
//! interval over seeds and pairs.

use std::collections::BTreeMap;

use primer_objectives::ObjectiveConfig;
use serde::{Deserialize, Serialize};

use super::jobs::Job;
use super::layout::Layout;
use super::results::{Comparison, read_json};
use super::spec::CompareSpec;
use super::stats::mean_std;

/// Minimal-pair accuracy of every objective, and what the data supports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PairsResult {
    /// Pairs scored per model.
    pub pairs: usize,
    /// One row per objective, in the spec's order.
    pub rows: Vec<PairsRow>,
    /// Each objective against each other, then each against its untrained twin.
    pub comparisons: Vec<Comparison>,
}

/// One objective's minimal-pair accuracy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PairsRow {
    /// The objective.
    pub objective: ObjectiveConfig,
    /// Accuracy per seed, trained.
    pub accuracies: Vec<f64>,
    /// Accuracy per seed, trained, over the pairs whose sentences have as many tokens (empty
    /// for scores made before primer reported it).
    #[serde(default)]
    pub equal_length: Vec<f64>,
    /// Accuracy per seed of the untrained weights.
    pub untrained: Vec<f64>,
    /// Mean accuracy over seeds per field.
    pub fields: BTreeMap<String, f64>,
}

/// What `primer minimal-pairs --json` writes, as far as a comparison reads it.
#[derive(Deserialize)]
struct Scored {
    pairs: usize,
    accuracy: f64,
    #[serde(default)]
    equal_length_accuracy: Option<f64>,
    fields: Vec<Group>,
    correct: String,
}

/// One group of `primer minimal-pairs --json`.
#[derive(Deserialize)]
struct Group {
    name: String,
    accuracy: f64,
}

/// Reads every objective's minimal-pair scores; `None` when the comparison scores none.
pub fn collect(spec: &CompareSpec, layout: &Layout) -> anyhow::Result<Option<PairsResult>> {
    if spec.minimal_pairs.is_none() {
        return Ok(None);
    }
    let mut rows = Vec::new();
    let mut correct = Vec::new();
    let mut pairs = 0;
    for (objective, config) in spec.objectives.iter().enumerate() {
        let mut row = PairsRow {
            objective: config.clone(),
            accuracies: Vec::new(),
            equal_length: Vec::new(),
            untrained: Vec::new(),
            fields: BTreeMap::new(),
        };
        let mut sides: [Vec<Vec<bool>>; 2] = Default::default();
        for &seed in &spec.seeds {
            for (side, untrained) in [false, true].into_iter().enumerate() {
                let job = Job::MinimalPairs {
                    objective,
                    seed,
                    untrained,
                };
                let scored: Scored = read_json(&layout.output(spec, &job))?;
                pairs = scored.pairs;
                sides[side].push(scored.correct.chars().map(|c| c == '1').collect());
                if untrained {
                    row.untrained.push(scored.accuracy);
                    continue;
                }
                row.accuracies.push(scored.accuracy);
                row.equal_length.extend(scored.equal_length_accuracy);
                for group in scored.fields {
                    *row.fields.entry(group.name).or_default() += group.accuracy / spec.seeds.len() as f64;
                }
            }
        }
        rows.push(row);
        correct.push(sides);
    }
    let label = |o: &ObjectiveConfig, untrained: bool| match untrained {
        true => format!("{o} untrained"),
        false => o.label(),
    };
    let mut comparisons = Vec::new();
    for a in 0..rows.len() {
        for b in a + 1..rows.len() {
            let (a_label, b_label) = (label(&rows[a].objective, false), label(&rows[b].objective, false));
            comparisons.push(Comparison::of(None, a_label, &correct[a][0], b_label, &correct[b][0]));
        }
    }
    for (row, sides) in rows.iter().zip(&correct) {
        let (trained, untrained) = (label(&row.objective, false), label(&row.objective, true));
        comparisons.push(Comparison::of(None, trained, &sides[0], untrained, &sides[1]));
    }
    Ok(Some(PairsResult {
        pairs,
        rows,
        comparisons,
    }))
}

impl PairsRow {
    /// Mean and standard deviation over seeds, trained and untrained.
    pub fn summary(&self) -> [(f64, f64); 2] {
        [mean_std(&self.accuracies), mean_std(&self.untrained)]
    }

    /// Mean and standard deviation over seeds on pairs of equal token counts, where every
    /// seed's scores report it.
    pub fn equal_length_summary(&self) -> Option<(f64, f64)> {
        (!self.equal_length.is_empty() && self.equal_length.len() == self.accuracies.len())
            .then(|| mean_std(&self.equal_length))
    }
}
