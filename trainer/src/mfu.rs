//! Model FLOPs utilisation: the share of a device's peak rate that training turns into model
//! arithmetic. The peak is the user's (`--peak-gflops`), or else the rate at which the training
//! device itself multiplies two 1024 x 1024 f32 matrices, measured once at start: the rate a
//! good kernel reaches on that device, on any backend, so MFU says how close the whole training
//! step comes to its matrix products.

use std::time::Instant;

use burn::tensor::{Device, Distribution, Tensor};

/// Side of the square matrices timed.
const SIDE: usize = 1024;
/// Timed products; the best one counts.
const REPEATS: usize = 3;

/// The f32 matrix-product rate of `device`, FLOP/s: the best of a few `1024³` products after one
/// warm-up (which also lets GPU backends compile their kernel).
pub fn measured_matmul_flops(device: &Device) -> f64 {
    let a = Tensor::<2>::random([SIDE, SIDE], Distribution::Default, device);
    let b = Tensor::<2>::random([SIDE, SIDE], Distribution::Default, device);
    // Reading one number back waits for the product on asynchronous backends.
    let product = || a.clone().matmul(b.clone()).slice([0..1, 0..1]).into_scalar::<f32>();
    product();
    let best = (0..REPEATS)
        .map(|_| {
            let started = Instant::now();
            product();
            started.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    2.0 * (SIDE as f64).powi(3) / best
}

/// MFU of a step that trained `tokens_per_s` tokens per second at `flops_per_token`.
pub fn mfu(flops_per_token: f64, tokens_per_s: f64, peak_flops: f64) -> f64 {
    flops_per_token * tokens_per_s / peak_flops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_measured_rate_is_a_plausible_cpu_rate() {
        let flops = measured_matmul_flops(&Device::flex());
        // Any CPU that runs the tests multiplies at more than 0.1 and less than 100,000 GFLOP/s.
        assert!((1e8..1e14).contains(&flops), "{flops}");
        assert_eq!(mfu(1e6, 2e4, 4e10), 0.5);
    }
}
