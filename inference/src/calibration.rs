//! Contextual calibration (Zhao et al. 2021, "Calibrate Before Use"): a prompted model leans
//! towards some labels whatever the text (the majority label of its demonstrations, the last
//! one, a word it saw often). Asking it about texts with no content measures the lean; dividing
//! each label's probability by it (`W = diag(p_cf)^-1`, `b = 0`) and renormalising takes it out.

/// The content-free texts the lean is measured on, as in the paper: `N/A`, `[MASK]` and the
/// empty string.
pub const CONTENT_FREE: [&str; 3] = ["N/A", "[MASK]", ""];

/// The model's lean: the mean of the label probabilities it gave each content-free text,
/// renormalised.
pub fn content_free_mean(probabilities: &[Vec<f64>]) -> Vec<f64> {
    let labels = probabilities.first().map_or(0, Vec::len);
    let mut mean = vec![0.0; labels];
    for p in probabilities {
        for (m, &x) in mean.iter_mut().zip(p) {
            *m += x;
        }
    }
    normalised(mean)
}

/// `probabilities` with the lean `content_free` divided out, renormalised.
pub fn calibrate(probabilities: &[f64], content_free: &[f64]) -> Vec<f64> {
    normalised(
        probabilities
            .iter()
            .zip(content_free)
            .map(|(&p, &cf)| p / cf.max(f64::MIN_POSITIVE))
            .collect(),
    )
}

/// Divides by the sum (a uniform distribution when it is 0).
fn normalised(mut values: Vec<f64>) -> Vec<f64> {
    let total: f64 = values.iter().sum();
    let n = values.len().max(1) as f64;
    for v in &mut values {
        *v = if total > 0.0 { *v / total } else { 1.0 / n };
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
    }

    #[test]
    fn the_lean_is_the_renormalised_mean_of_the_content_free_probabilities() {
        let lean = content_free_mean(&[vec![0.8, 0.2], vec![0.6, 0.4], vec![0.7, 0.3]]);
        assert!(close(&lean, &[0.7, 0.3]), "{lean:?}");
        // Probabilities over a subset of words need not sum to one.
        assert!(close(
            &content_free_mean(&[vec![0.2, 0.2], vec![0.1, 0.3]]),
            &[0.375, 0.625]
        ));
    }

    #[test]
    fn calibration_divides_the_lean_out() {
        // A model that leans 3:1 towards label 0 gives a neutral text 3:1 as well.
        assert!(close(&calibrate(&[0.75, 0.25], &[0.75, 0.25]), &[0.5, 0.5]));
        assert!(close(&calibrate(&[0.6, 0.4], &[0.75, 0.25]), &[1.0 / 3.0, 2.0 / 3.0]));
        // No lean, no change.
        assert!(close(&calibrate(&[0.6, 0.4], &[0.5, 0.5]), &[0.6, 0.4]));
    }

    #[test]
    fn a_model_biased_to_one_label_is_brought_back_to_balance() {
        // Texts of both labels, half each: the model adds a lean of +1.5 logits to label 0 on
        // top of a weaker signal (+-1 logit towards the right label), so it says 0 for all.
        let logits = |label: usize| {
            let signal = if label == 0 { 1.0 } else { -1.0 };
            [1.5 + signal, 0.0]
        };
        let softmax = |z: [f64; 2]| {
            let e = z.map(f64::exp);
            vec![e[0] / (e[0] + e[1]), e[1] / (e[0] + e[1])]
        };
        let labels: Vec<usize> = (0..20).map(|i| i % 2).collect();
        let raw: Vec<Vec<f64>> = labels.iter().map(|&l| softmax(logits(l))).collect();
        let argmax = |p: &[f64]| usize::from(p[1] > p[0]);
        let said_zero = |ps: &[Vec<f64>]| ps.iter().filter(|p| argmax(p) == 0).count();
        assert_eq!(said_zero(&raw), 20, "uncalibrated: always label 0");
        // Content-free texts show the lean alone.
        let lean = content_free_mean(&[softmax([1.5, 0.0]), softmax([1.4, 0.0]), softmax([1.6, 0.0])]);
        let calibrated: Vec<Vec<f64>> = raw.iter().map(|p| calibrate(p, &lean)).collect();
        assert_eq!(said_zero(&calibrated), 10, "calibrated: balanced");
        let right = |ps: &[Vec<f64>]| ps.iter().zip(&labels).filter(|(p, l)| argmax(p) == **l).count();
        assert_eq!((right(&raw), right(&calibrated)), (10, 20));
    }
}
