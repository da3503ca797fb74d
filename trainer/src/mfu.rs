//! Model FLOPs utilisation: the share of a device's peak rate that training turns into model
//! arithmetic. The peak is the user's (`--peak-gflops`), or else the rate at which the training
//! device itself multiplies square f32 matrices (up to 1024 x 1024), measured once at start:
//! the rate a good kernel reaches on that device, on any backend, so MFU says how close the
//! whole training step comes to its matrix products.

use std::time::Instant;

use burn::tensor::{Device, Distribution, Tensor};

/// Side of the largest square matrices timed.
const MAX_SIDE: usize = 1024;
/// A product this slow is large enough to time: the measurement stops growing the matrices.
const LONG_ENOUGH_S: f64 = 0.05;
/// Timed products at the final size; the best one counts.
const REPEATS: usize = 3;

/// The f32 matrix-product rate of `device`, FLOP/s: the best of a few square products. Each
/// size is warmed up first (which also lets GPU backends compile their kernels); the side
/// doubles from 256 up to 1024 while a warm product takes under 50 ms, so a slow device (a
/// software Vulkan driver) is measured in under a second too.
pub fn measured_matmul_flops(device: &Device) -> f64 {
    let mut side = 256;
    loop {
        let a = Tensor::<2>::random([side, side], Distribution::Default, device);
        let b = Tensor::<2>::random([side, side], Distribution::Default, device);
        // Reading one number back waits for the product on asynchronous backends.
        let product = || {
            let started = Instant::now();
            a.clone().matmul(b.clone()).slice([0..1, 0..1]).into_scalar::<f32>();
            started.elapsed().as_secs_f64()
        };
        product();
        let first = product();
        if side < MAX_SIDE && first < LONG_ENOUGH_S {
            side *= 2;
            continue;
        }
        let best = (1..REPEATS).map(|_| product()).fold(first, f64::min);
        return 2.0 * (side as f64).powi(3) / best;
    }
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
