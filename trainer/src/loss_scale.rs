//! Dynamic loss scaling for float16 training, as PyTorch's `GradScaler` does it.
//!
//! float16 gradients underflow to zero below 6e-8; multiplying the loss by a large scale before
//! the backward pass lifts them into range, and dividing the (float32) gradients by it after
//! gives the true ones. A scale too large overflows to infinity instead: such a step is skipped
//! (no update, the data consumed) and the scale halved; after [`GROWTH_INTERVAL`] steps without
//! overflow it doubles again.

use serde::{Deserialize, Serialize};

/// The scale a float16 run starts from, 2^16 (PyTorch's `init_scale`).
pub const INITIAL_SCALE: f64 = 65536.0;

/// Steps without overflow after which the scale doubles (PyTorch's `growth_interval`).
pub const GROWTH_INTERVAL: u64 = 2000;

/// Below this scale, overflow is not the scale's doing: the run has diverged.
pub const MIN_SCALE: f64 = 1.0;

/// The loss scale's state, checkpointed with the run so that a resumed float16 run is exact.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossScale {
    /// What the loss is multiplied by before the backward pass.
    pub scale: f64,
    /// Steps applied since the scale last changed.
    pub good_steps: u64,
    /// Steps skipped for overflowing gradients, over the whole run.
    pub skipped_steps: u64,
}

impl Default for LossScale {
    fn default() -> Self {
        Self {
            scale: INITIAL_SCALE,
            good_steps: 0,
            skipped_steps: 0,
        }
    }
}

impl LossScale {
    /// Records a step whose unscaled gradients were `finite` or not, and says whether to apply
    /// it: an overflowed step is skipped and halves the scale; [`GROWTH_INTERVAL`] applied
    /// steps in a row double it.
    pub fn update(&mut self, finite: bool) -> bool {
        if !finite {
            self.scale /= 2.0;
            self.good_steps = 0;
            self.skipped_steps += 1;
            return false;
        }
        self.good_steps += 1;
        if self.good_steps == GROWTH_INTERVAL {
            self.scale *= 2.0;
            self.good_steps = 0;
        }
        true
    }

    /// Whether the scale has fallen so low that overflow cannot be its doing.
    pub fn collapsed(&self) -> bool {
        self.scale < MIN_SCALE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_skips_and_halves_and_a_clean_interval_doubles() {
        let mut scale = LossScale::default();
        assert!(!scale.update(false));
        assert_eq!((scale.scale, scale.skipped_steps), (INITIAL_SCALE / 2.0, 1));
        for _ in 0..GROWTH_INTERVAL - 1 {
            assert!(scale.update(true));
        }
        assert_eq!(scale.scale, INITIAL_SCALE / 2.0);
        assert!(scale.update(true));
        assert_eq!((scale.scale, scale.good_steps), (INITIAL_SCALE, 0));
        // 17 overflows in a row bring 2^16 below 1.
        for _ in 0..17 {
            scale.update(false);
        }
        assert!(scale.collapsed());
    }
}
