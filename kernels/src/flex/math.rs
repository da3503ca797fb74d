//! Arithmetic the flex kernels share: vectorising `erf`, `exp` and sums, and strided
//! matrices for gemm over flex's `f32` buffers.

use burn::tensor::TensorData;
use burn_flex::FlexTensor;
use gemm::Parallelism;

/// The error function in single precision: the rational approximation on `[-4, 4]` of Eigen
/// and XLA (outside it, erf is ±1 in `f32`). Only multiplications, additions and a division,
/// so a loop of it vectorises, unlike libm's `erff`.
#[allow(clippy::excessive_precision)]
#[inline]
pub(super) fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.72614225801306e-10_f32;
    for alpha in [
        2.77068142495902e-08,
        -2.10102402082508e-06,
        -5.69250639462346e-05,
        -7.34990630326855e-04,
        -2.95459980854025e-03,
        -1.60960333262415e-02,
    ] {
        p = p * x2 + alpha;
    }
    let mut q = -1.45660718464996e-05_f32;
    for beta in [
        -2.13374055278905e-04,
        -1.68282697438203e-03,
        -7.37332916720468e-03,
        -1.42647390514189e-02,
    ] {
        q = q * x2 + beta;
    }
    x * p / q
}

/// `e^x` for `x ≤ 0` in single precision, in operations that vectorise: `2^n · e^r` with
/// `n = round(x / ln 2)`, `|r| ≤ ln 2 / 2`, and a degree-6 polynomial for `e^r`.
#[allow(clippy::excessive_precision)]
#[inline]
pub(super) fn exp(x: f32) -> f32 {
    // Below -87.3, 2^n would leave f32's exponent range; e^-87.3 (1e-38) is zero to every use.
    let x = x.max(-87.3);
    // Adding 1.5 · 2^23 rounds to the nearest integer, which lands in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let shifted = x * core::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * 0.693_145_751_953_125 - n * 1.428_606_765_330_187e-6;
    let mut p = 1.0 / 720.0;
    for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = p * r + c;
    }
    let n = shifted.to_bits() as i32 - ROUND.to_bits() as i32;
    p * f32::from_bits(((n + 127) as u32) << 23)
}

#[inline]
pub(super) fn sum(x: &[f32]) -> f32 {
    sum_of(x, x, |x, _| x)
}

#[inline]
pub(super) fn sum_of_squares(x: &[f32], mean: f32) -> f32 {
    sum_of(x, x, |x, _| (x - mean) * (x - mean))
}

#[inline]
pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
    sum_of(a, b, |a, b| a * b)
}

/// `Σ term(a[i], b[i])`, in eight lanes so that the loop vectorises (a single running sum
/// would chain every addition on the one before).
#[inline]
pub(super) fn sum_of(a: &[f32], b: &[f32], term: impl Fn(f32, f32) -> f32) -> f32 {
    let mut lanes = [0.0_f32; 8];
    let (mut a_chunks, mut b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    for (a, b) in (&mut a_chunks).zip(&mut b_chunks) {
        for ((lane, &a), &b) in lanes.iter_mut().zip(a).zip(b) {
            *lane += term(a, b);
        }
    }
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(&a, &b)| term(a, b))
        .sum();
    lanes.iter().sum::<f32>() + tail
}

#[inline]
pub(super) fn add_into(total: &mut [f32], part: &[f32]) {
    for (total, part) in total.iter_mut().zip(part) {
        *total += part;
    }
}

/// `dst = scale · lhs · rhs` (`+ dst` if `accumulate`) for `[m, k] · [k, n]`.
///
/// # Safety
/// Each matrix must address its `rows × cols` valid floats through its strides, and `dst`
/// must not overlap the others or be accessed by anyone else meanwhile.
#[allow(clippy::too_many_arguments)] // gemm's own shape: sizes, operands, then how to combine
pub(super) unsafe fn matmul(
    [m, n, k]: [usize; 3],
    dst: Matrix,
    lhs: Matrix,
    rhs: Matrix,
    scale: f32,
    accumulate: bool,
    parallelism: Parallelism,
) {
    // SAFETY: forwarded from the caller; gemm reads `lhs` and `rhs` and writes `dst` only.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.ptr,
            dst.col_stride,
            dst.row_stride,
            accumulate,
            lhs.ptr,
            lhs.col_stride,
            lhs.row_stride,
            rhs.ptr,
            rhs.col_stride,
            rhs.row_stride,
            1.0,
            scale,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// A strided matrix in an `f32` buffer, as gemm takes it.
#[derive(Clone, Copy)]
pub(super) struct Matrix {
    pub(super) ptr: *mut f32,
    pub(super) row_stride: isize,
    pub(super) col_stride: isize,
}

impl Matrix {
    /// The same memory read as the transpose.
    pub(super) fn t(self) -> Self {
        Self {
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }
}

/// A contiguous tensor as a row-major matrix of `cols` columns, to be read only.
#[inline]
pub(super) fn row_major(x: &FlexTensor, cols: usize) -> Matrix {
    Matrix {
        // gemm takes `*mut` for every operand; this one is only read.
        ptr: floats(x).as_ptr().cast_mut(),
        row_stride: cols as isize,
        col_stride: 1,
    }
}

/// A row-major matrix of `cols` columns over `buffer`.
#[inline]
pub(super) fn row_major_mut(buffer: &mut [f32], cols: usize) -> Matrix {
    Matrix {
        ptr: buffer.as_mut_ptr(),
        row_stride: cols as isize,
        col_stride: 1,
    }
}

#[inline]
pub(super) fn dims(x: &FlexTensor) -> [usize; 2] {
    let shape = x.layout().shape();
    [shape[0], shape[1]]
}

pub(super) fn contiguous(x: FlexTensor) -> FlexTensor {
    if x.as_slice::<f32>().is_some() {
        x
    } else {
        x.to_contiguous()
    }
}

#[inline]
pub(super) fn floats(x: &FlexTensor) -> &[f32] {
    x.as_slice::<f32>().expect("a contiguous f32 tensor")
}

pub(super) fn tensor(data: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_libm_to_single_precision() {
        let worst = (-6000..=6000)
            .map(|i| i as f32 * 1e-3)
            .map(|x| (erf(x) - libm_erf(x)).abs())
            .fold(0.0_f32, f32::max);
        // A few units in the last place of values near 1 (6e-8 each).
        assert!(worst < 4e-7, "largest error {worst}");
    }

    #[test]
    fn exp_matches_std_in_relative_error() {
        let worst = (0..=87_000)
            .map(|i| -(i as f32) * 1e-3)
            .map(|x| ((exp(x) - x.exp()) / x.exp()).abs())
            .fold(0.0_f32, f32::max);
        assert!(worst < 3e-7, "largest relative error {worst}");
        assert!(exp(-200.0) < 1e-37);
    }

    fn libm_erf(x: f32) -> f32 {
        libm::erf(x as f64) as f32
    }
}
