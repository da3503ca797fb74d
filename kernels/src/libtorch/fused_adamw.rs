//! libtorch's fused AdamW (`_fused_adamw_`, what `torch.optim.AdamW(fused=True)` runs) on one
//! parameter, in place, through the C++ shim `fused_adamw.cpp` that build.rs compiles: tch 0.22
//! generates no bindings for tensor-list ops.

use std::ffi::{CStr, c_char, c_void};

use tch::Tensor;

use crate::AdamWStep;

unsafe extern "C" {
    fn primer_fused_adamw(
        param: *mut c_void,
        grad: *const c_void,
        moment_1: *mut c_void,
        moment_2: *mut c_void,
        lr: f64,
        beta_1: f64,
        beta_2: f64,
        weight_decay: f64,
        epsilon: f64,
        time: i64,
    ) -> *mut c_char;

    fn primer_free_error(error: *mut c_char);
}

/// Applies one AdamW update to `param` and its moments, in place, in one kernel.
///
/// # Panics
/// If libtorch refuses the tensors (devices or dtypes that differ).
pub(super) fn step(param: &mut Tensor, grad: &Tensor, moment_1: &mut Tensor, moment_2: &mut Tensor, step: AdamWStep) {
    // SAFETY: tch's pointers are to live `at::Tensor`s, borrowed for the call; the shim
    // catches every C++ exception and returns its message, which it allocated.
    let error = unsafe {
        primer_fused_adamw(
            param.as_mut_ptr().cast(),
            grad.as_ptr().cast(),
            moment_1.as_mut_ptr().cast(),
            moment_2.as_mut_ptr().cast(),
            step.lr,
            step.beta_1 as f64,
            step.beta_2 as f64,
            step.weight_decay as f64,
            step.epsilon as f64,
            step.time as i64,
        )
    };
    if !error.is_null() {
        // SAFETY: a non-null error is a NUL-terminated string the shim allocated.
        let message = unsafe { CStr::from_ptr(error) }.to_string_lossy().into_owned();
        // SAFETY: freed once, by the shim's own allocator.
        unsafe { primer_free_error(error) };
        panic!("libtorch's fused AdamW failed: {message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FusedKernels;
    use burn::backend::LibTorch;
    use burn_tch::TchTensor;
    use tch::{Device, Kind};

    /// The fused kernel gives the eight-op update's parameters and moments (which the ops tests
    /// check against Burn's AdamW), over several updates. Run on the CPU, where libtorch has the
    /// kernel too; training uses it on CUDA.
    #[test]
    fn matches_the_eight_op_update_over_several_updates() {
        tch::manual_seed(7);
        let normal = || Tensor::randn([7, 33], (Kind::Float, Device::Cpu));
        let (mut param, mut moment_1, mut moment_2) = (normal(), normal().zeros_like(), normal().zeros_like());
        let mut expected = [param.copy(), moment_1.copy(), moment_2.copy()];
        for time in 1..=3 {
            let grad = normal() * time as f64;
            let update = AdamWStep {
                lr: 1e-2,
                beta_1: 0.9,
                beta_2: 0.95,
                epsilon: 1e-8,
                weight_decay: 0.1,
                time,
            };
            let [p, m, v] = expected.map(TchTensor::new);
            let (p, m, v) = LibTorch::adamw(p, TchTensor::new(grad.copy()), m, v, update);
            expected = [p.tensor, m.tensor, v.tensor];
            step(&mut param, &grad, &mut moment_1, &mut moment_2, update);
            for (fused, eight_ops) in [&param, &moment_1, &moment_2].into_iter().zip(&expected) {
                assert!(fused.allclose(eight_ops, 1e-5, 1e-6, false), "update {time}");
            }
        }
    }
}
