//! Demonstrations for in-context (k-shot) prompting: K labelled training examples drawn with a
//! seed, balanced over labels and placed round-robin (the default), or drawn and placed at
//! random as GPT-3 does (Brown et al. 2020). `primer finetune --shots K` trains on exactly the
//! examples `primer prompt-classify --shots K` shows, so that prompting and fine-tuning can be
//! compared on the same labels.

use std::fmt;

use rand::SeedableRng;
use rand::seq::{SliceRandom, index};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::task::Task;

/// How demonstrations are drawn and placed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShotOrder {
    /// K / L examples of each of the L labels (the K mod L left over go to labels chosen with
    /// the seed), placed round-robin over the labels in a seeded order, so that no label has
    /// more of the demonstrations nor always the last one.
    #[default]
    Balanced,
    /// K examples drawn at random from the whole training split, whatever their labels, in
    /// random order (GPT-3's draw).
    Random,
}

impl fmt::Display for ShotOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Balanced => "balanced",
            Self::Random => "random",
        })
    }
}

impl Task {
    /// The indices into [`Task::train`] of `k` demonstrations drawn with `seed`, in the order
    /// they are shown. The error names `--shots` and the most it can be.
    pub fn demonstrations(&self, k: usize, order: ShotOrder, seed: u64) -> Result<Vec<usize>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        match order {
            ShotOrder::Random => {
                if k > self.train.len() {
                    return Err(DataError::InvalidOption(format!(
                        "--shots {k} is more than the {} training examples of {}: give at most {}",
                        self.train.len(),
                        self.name,
                        self.train.len()
                    )));
                }
                Ok(index::sample(&mut rng, self.train.len(), k).into_vec())
            }
            ShotOrder::Balanced => self.balanced(k, &mut rng),
        }
    }

    /// K / L examples per label, round-robin; see [`ShotOrder::Balanced`].
    fn balanced(&self, k: usize, rng: &mut ChaCha8Rng) -> Result<Vec<usize>> {
        let n_labels = self.labels.len();
        let mut by_label: Vec<Vec<usize>> = vec![Vec::new(); n_labels];
        for (i, example) in self.train.iter().enumerate() {
            by_label[example.label].push(i);
        }
        let mut label_order: Vec<usize> = (0..n_labels).collect();
        label_order.shuffle(rng);
        // The labels first in the seeded order take one more when K does not divide evenly.
        let quota = |rank: usize| k / n_labels + usize::from(rank < k % n_labels);
        let fewest = by_label.iter().map(Vec::len).min().unwrap_or(0);
        for (rank, &label) in label_order.iter().enumerate() {
            if quota(rank) > by_label[label].len() {
                return Err(DataError::InvalidOption(format!(
                    "--shots {k} takes {} examples of label {:?}, and the training split of {} has {}: give at most {}, or --shot-order random",
                    quota(rank),
                    self.labels[label],
                    self.name,
                    by_label[label].len(),
                    fewest * n_labels
                )));
            }
        }
        for ids in &mut by_label {
            ids.shuffle(rng);
        }
        // Round-robin: one of each label's share in turn, in the seeded label order.
        let mut shares: Vec<std::slice::Iter<usize>> = label_order
            .iter()
            .enumerate()
            .map(|(rank, &label)| by_label[label][..quota(rank)].iter())
            .collect();
        let mut drawn = Vec::with_capacity(k);
        while drawn.len() < k {
            drawn.extend(shares.iter_mut().filter_map(|share| share.next().copied()));
        }
        Ok(drawn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::Example;

    /// A task with `counts[l]` training examples of label `l`, interleaved.
    fn task(counts: &[usize]) -> Task {
        let mut train = Vec::new();
        let most = counts.iter().copied().max().unwrap_or(0);
        for i in 0..most {
            for (label, &count) in counts.iter().enumerate() {
                if i < count {
                    train.push(Example {
                        text: format!("{label}-{i}"),
                        label,
                    });
                }
            }
        }
        Task {
            name: "t".into(),
            labels: (0..counts.len()).map(|l| format!("l{l}")).collect(),
            train,
            valid: Vec::new(),
        }
    }

    fn labels_of(task: &Task, drawn: &[usize]) -> Vec<usize> {
        drawn.iter().map(|&i| task.train[i].label).collect()
    }

    #[test]
    fn balanced_draws_share_out_labels_round_robin() {
        let task = task(&[10, 10, 10]);
        let drawn = task.demonstrations(7, ShotOrder::Balanced, 3).unwrap();
        let labels = labels_of(&task, &drawn);
        assert_eq!(labels.len(), 7);
        let mut counts = [0; 3];
        labels.iter().for_each(|&l| counts[l] += 1);
        counts.sort();
        assert_eq!(counts, [2, 2, 3]);
        // Round-robin: each round of three shows every label once, in one seeded order.
        assert_eq!(labels[..3], labels[3..6]);
        let mut first_round = labels[..3].to_vec();
        first_round.sort();
        assert_eq!(first_round, [0, 1, 2]);
        assert_eq!(labels[6], labels[0]);
        let mut distinct = drawn.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 7, "no example twice");
    }

    #[test]
    fn draws_follow_the_seed() {
        let task = task(&[20, 20]);
        let draw = |seed| task.demonstrations(6, ShotOrder::Balanced, seed).unwrap();
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
        let random = |seed| task.demonstrations(6, ShotOrder::Random, seed).unwrap();
        assert_eq!(random(5), random(5));
        assert_ne!(random(5), random(6));
        assert!(task.demonstrations(0, ShotOrder::Balanced, 1).unwrap().is_empty());
    }

    #[test]
    fn random_draws_take_any_labels_from_the_whole_split() {
        let task = task(&[3, 30]);
        let drawn = task.demonstrations(12, ShotOrder::Random, 0).unwrap();
        assert_eq!(drawn.len(), 12);
        assert!(drawn.iter().all(|&i| i < task.train.len()));
        // Balanced, 12 would take 6 of the 3 examples of label 0.
        assert!(labels_of(&task, &drawn).iter().filter(|&&l| l == 1).count() > 6);
        let error = task.demonstrations(34, ShotOrder::Random, 0).unwrap_err().to_string();
        assert!(error.contains("--shots 34") && error.contains("at most 33"), "{error}");
    }

    #[test]
    fn a_label_short_of_its_share_is_refused_with_the_most_that_fits() {
        let task = task(&[3, 30]);
        assert_eq!(task.demonstrations(6, ShotOrder::Balanced, 0).unwrap().len(), 6);
        let error = task.demonstrations(8, ShotOrder::Balanced, 0).unwrap_err().to_string();
        assert!(
            error.contains("--shots 8 takes 4 examples of label \"l0\"")
                && error.contains("has 3")
                && error.contains("at most 6"),
            "{error}"
        );
    }
}
