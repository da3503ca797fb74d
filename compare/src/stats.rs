//! The statistics of a comparison: means over seeds, majority baselines and paired bootstrap
//! intervals.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Bootstrap resamples per confidence interval.
pub const BOOTSTRAP_ITERATIONS: usize = 2000;

/// The accuracy of always answering the most frequent of `labels`.
pub fn majority_accuracy(labels: &[usize]) -> f64 {
    let mut counts = BTreeMap::new();
    for &label in labels {
        *counts.entry(label).or_insert(0usize) += 1;
    }
    counts.values().max().copied().unwrap_or(0) as f64 / labels.len().max(1) as f64
}

/// Mean and sample standard deviation (0 for fewer than two values).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n.max(1.0);
    let std = if values.len() < 2 {
        0.0
    } else {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    };
    (mean, std)
}

/// The accuracy difference of `a` over `b` with a 95% bootstrap interval, paired by seed and by
/// example: each resample draws seeds with replacement, then each drawn seed's validation
/// examples with replacement, and scores both sides on the same draws.
///
/// `a[s]` and `b[s]` are, for seed `s`, whether each validation example was classified right.
pub fn bootstrap_difference(a: &[Vec<bool>], b: &[Vec<bool>], iterations: usize, seed: u64) -> (f64, f64, f64) {
    let accuracy = |v: &[bool]| v.iter().filter(|&&c| c).count() as f64 / v.len().max(1) as f64;
    let seeds = a.len().min(b.len());
    if seeds == 0 {
        return (0.0, 0.0, 0.0);
    }
    let observed = (0..seeds).map(|s| accuracy(&a[s]) - accuracy(&b[s])).sum::<f64>() / seeds as f64;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut draws: Vec<f64> = (0..iterations)
        .map(|_| {
            let mut total = 0.0;
            for _ in 0..seeds {
                let s = rng.random_range(0..seeds);
                let n = a[s].len().min(b[s].len());
                let mut diff = 0i64;
                for _ in 0..n {
                    let i = rng.random_range(0..n);
                    diff += i64::from(a[s][i]) - i64::from(b[s][i]);
                }
                total += diff as f64 / n.max(1) as f64;
            }
            total / seeds as f64
        })
        .collect();
    draws.sort_by(f64::total_cmp);
    let at = |q: f64| draws[((q * (iterations - 1) as f64).round() as usize).min(iterations - 1)];
    (observed, at(0.025), at(0.975))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_of_identical_runs_is_zero_and_of_opposite_runs_is_one() {
        let right = vec![vec![true; 50], vec![true; 40]];
        let wrong = vec![vec![false; 50], vec![false; 40]];
        assert_eq!(bootstrap_difference(&right, &right, 200, 1), (0.0, 0.0, 0.0));
        assert_eq!(bootstrap_difference(&right, &wrong, 200, 1), (1.0, 1.0, 1.0));
        assert_eq!(bootstrap_difference(&wrong, &right, 200, 1), (-1.0, -1.0, -1.0));
    }

    #[test]
    fn bootstrap_interval_holds_the_observed_difference_and_narrows_with_data() {
        // a is right on 60% of examples, b on 50%, with b's right answers a subset of a's.
        let run = |n: usize, share: f64| (0..n).map(|i| (i as f64) < share * n as f64).collect::<Vec<bool>>();
        let a_small = vec![run(100, 0.6), run(100, 0.6)];
        let b_small = vec![run(100, 0.5), run(100, 0.5)];
        let (d, lo, hi) = bootstrap_difference(&a_small, &b_small, 1000, 3);
        assert!((d - 0.1).abs() < 1e-12);
        assert!(lo < d && d < hi, "{lo} {d} {hi}");
        let a_big = vec![run(2000, 0.6), run(2000, 0.6)];
        let b_big = vec![run(2000, 0.5), run(2000, 0.5)];
        let (_, lo_big, hi_big) = bootstrap_difference(&a_big, &b_big, 1000, 3);
        assert!(hi_big - lo_big < hi - lo);
        assert!(lo_big > 0.0);
    }

    #[test]
    fn mean_and_sample_deviation() {
        assert_eq!(mean_std(&[1.0, 3.0]), (2.0, 2f64.sqrt()));
        assert_eq!(mean_std(&[0.5]), (0.5, 0.0));
    }
}
