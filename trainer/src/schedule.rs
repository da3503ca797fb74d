//! Learning-rate schedule: linear warm-up, then cosine decay to `min_lr`.

/// Learning rate of optimizer step `step` (1-based) of `total`.
///
/// Steps `1..=warmup` rise linearly to `peak`; later steps follow half a cosine from `peak`
/// down to `min` at step `total`, and stay at `min` after it.
pub fn learning_rate(step: u64, total: u64, warmup: u64, peak: f64, min: f64) -> f64 {
    if step <= warmup {
        return peak * step as f64 / warmup as f64;
    }
    if step >= total {
        return min;
    }
    let progress = (step - warmup) as f64 / (total - warmup) as f64;
    min + 0.5 * (peak - min) * (1.0 + (std::f64::consts::PI * progress).cos())
}

#[cfg(test)]
mod tests {
    use super::learning_rate;

    #[test]
    fn warms_up_then_decays_to_min() {
        let lr = |s| learning_rate(s, 100, 10, 1e-3, 1e-4);
        assert!((lr(1) - 1e-4).abs() < 1e-12);
        assert!((lr(10) - 1e-3).abs() < 1e-12);
        assert!((lr(55) - 5.5e-4).abs() < 1e-9, "midpoint {}", lr(55));
        assert!((lr(100) - 1e-4).abs() < 1e-12);
        assert!((lr(150) - 1e-4).abs() < 1e-12);
        assert!((1..100).all(|s| lr(s + 1) <= lr(s) || s < 10));
        assert_eq!(learning_rate(5, 10, 0, 1.0, 0.0), 0.5);
    }
}
