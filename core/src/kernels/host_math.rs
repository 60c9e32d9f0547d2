//! Elementwise math for the host kernels, written so the compiler vectorises it: no branches
//! and no calls into the C library (whose scalar `expf` made burn-flex's SiLU the serial part
//! of the VAE decoder on the CPU).

const LOG2_E: f32 = std::f32::consts::LOG2_E;
// ln 2 split in two, so that `n · ln 2` is exact for the reduction's |n| ≤ 127.
const LN_2_HI: f32 = 0.693_359_4; // = 0.693359375 exactly in f32
const LN_2_LO: f32 = -2.121_944_4e-4;
// Adding and subtracting 1.5 · 2²³ rounds an f32 of magnitude < 2²² to the nearest integer
// (SSE2 has no vector `round`).
const ROUND: f32 = 12_582_912.0;

/// `e^x` to within about 2 ulp (relative error < 3e-7) for |x| ≤ 87, clamped beyond (the
/// results stay finite and nonzero); NaN stays NaN.
///
/// `x = n ln 2 + r` with `|r| ≤ ln 2 / 2`, `e^r` by its Taylor series to the 7th power
/// (truncation < 6e-9 there), times `2^n` built in the exponent bits.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2_E + ROUND) - ROUND;
    let r = x - n * LN_2_HI - n * LN_2_LO;
    let p = 1.0 / 5040.0;
    let p = p * r + 1.0 / 720.0;
    let p = p * r + 1.0 / 120.0;
    let p = p * r + 1.0 / 24.0;
    let p = p * r + 1.0 / 6.0;
    let p = p * r + 0.5;
    let p = p * r + 1.0;
    let p = p * r + 1.0;
    // n ∈ [-126, 127] after the clamp: a normal power of two. A NaN `n` casts to 0.
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    p * scale
}

/// `x · sigmoid(x)`, as `x / (1 + e^-x)`.
#[inline(always)]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + exp(-x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_a_few_ulp_of_the_c_library() {
        let mut worst = 0f64;
        for i in -870_000..=870_000 {
            let x = i as f32 * 1e-4;
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
    }

    #[test]
    fn exp_saturates_finite_and_keeps_nan() {
        assert!(exp(1000.0).is_finite() && exp(1000.0) > 1e38);
        assert!(exp(-1000.0) > 0.0 && exp(-1000.0) < 1e-37);
        assert!(exp(f32::NAN).is_nan());
    }

    #[test]
    fn silu_matches_its_definition() {
        for i in -2000..=2000 {
            let x = i as f32 * 0.01;
            let want = x as f64 / (1.0 + (-(x as f64)).exp());
            let got = silu(x) as f64;
            assert!(
                (got - want).abs() <= 1e-6 * want.abs().max(1e-3),
                "silu({x}) = {got}, want {want}"
            );
        }
        assert!(silu(-200.0) <= 0.0 && silu(-200.0) > -1e-30);
        assert_eq!(silu(200.0), 200.0);
        assert!(silu(f32::NAN).is_nan());
    }
}
