//! The Fréchet distance between two Gaussians fitted to feature sets, in f64, as pytorch-fid
//! computes FID: `|μ₁ − μ₂|² + tr Σ₁ + tr Σ₂ − 2 tr √(Σ₁Σ₂)`, with `np.cov`'s unbiased
//! covariance. pytorch-fid takes `scipy.linalg.sqrtm(Σ₁Σ₂)`; the trace of that square root is
//! the sum of the square roots of the eigenvalues of `Σ₁Σ₂`, which are those of the symmetric
//! `Sᵀ Σ₂ S` for any `Σ₁ = S Sᵀ` (here `S = V √Λ` from `Σ₁`'s eigen-decomposition), so two
//! symmetric eigen-decompositions replace the general square root, singular `Σ₁` included.

use crate::eigen::{Square, symmetric_eigen};

/// A Gaussian fitted to `n` feature vectors.
#[derive(Clone, Debug)]
pub struct Gaussian {
    pub mean: Vec<f64>,
    pub cov: Square,
    /// How many vectors it was fitted to (FID is biased and unstable below ~1000).
    pub n: usize,
}

/// Why a distance cannot be computed.
#[derive(Clone, Debug, PartialEq)]
pub enum FrechetError {
    /// Fewer than two vectors in a set (no covariance).
    TooFew(usize),
    /// Vectors of different lengths.
    Dimensions { expected: usize, got: usize },
    /// A NaN or infinity among the features.
    NotFinite,
}

impl std::fmt::Display for FrechetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrechetError::TooFew(n) => write!(
                f,
                "a Fréchet distance needs at least 2 images per set (got {n})"
            ),
            FrechetError::Dimensions { expected, got } => {
                write!(
                    f,
                    "feature vectors of {got} numbers where {expected} were expected"
                )
            }
            FrechetError::NotFinite => write!(f, "a feature is not a finite number"),
        }
    }
}

impl Gaussian {
    /// `np.mean(x, 0)` and `np.cov(x, rowvar=False)`.
    pub fn fit(features: &[Vec<f32>]) -> Result<Self, FrechetError> {
        let n = features.len();
        if n < 2 {
            return Err(FrechetError::TooFew(n));
        }
        let d = features[0].len();
        let mut mean = vec![0.0f64; d];
        for f in features {
            if f.len() != d {
                return Err(FrechetError::Dimensions {
                    expected: d,
                    got: f.len(),
                });
            }
            if f.iter().any(|x| !x.is_finite()) {
                return Err(FrechetError::NotFinite);
            }
            for (m, &x) in mean.iter_mut().zip(f) {
                *m += f64::from(x);
            }
        }
        for m in &mut mean {
            *m /= n as f64;
        }
        let centred: Vec<Vec<f64>> = features
            .iter()
            .map(|f| {
                f.iter()
                    .zip(&mean)
                    .map(|(&x, m)| f64::from(x) - m)
                    .collect()
            })
            .collect();
        let mut cov = Square::zeros(d);
        for i in 0..d {
            for j in 0..=i {
                let s: f64 = centred.iter().map(|c| c[i] * c[j]).sum::<f64>() / (n - 1) as f64;
                cov.data[i * d + j] = s;
                cov.data[j * d + i] = s;
            }
        }
        Ok(Self { mean, cov, n })
    }
}

/// The Fréchet distance between `a` and `b`.
pub fn frechet_distance(a: &Gaussian, b: &Gaussian) -> Result<f64, FrechetError> {
    let d = a.mean.len();
    if b.mean.len() != d {
        return Err(FrechetError::Dimensions {
            expected: d,
            got: b.mean.len(),
        });
    }
    let diff: f64 = a
        .mean
        .iter()
        .zip(&b.mean)
        .map(|(x, y)| (x - y).powi(2))
        .sum();
    // Σ₁ = V Λ Vᵀ = S Sᵀ with S = V √Λ (rounding's negative eigenvalues are zero).
    let eig = symmetric_eigen(&a.cov, true);
    let v = eig.vectors.expect("asked for the vectors");
    let roots: Vec<f64> = eig.values.iter().map(|&l| l.max(0.0).sqrt()).collect();
    let mut s = Square::zeros(d);
    for i in 0..d {
        for (k, root) in roots.iter().enumerate() {
            s.data[i * d + k] = v.at(i, k) * root;
        }
    }
    // M = Sᵀ Σ₂ S, symmetric positive semi-definite.
    let mut t = Square::zeros(d); // Σ₂ S
    for i in 0..d {
        for j in 0..d {
            let bij = b.cov.at(i, j);
            if bij == 0.0 {
                continue;
            }
            for k in 0..d {
                t.data[i * d + k] += bij * s.at(j, k);
            }
        }
    }
    let mut m = Square::zeros(d);
    for i in 0..d {
        for k in 0..d {
            let sik = s.at(k, i);
            if sik == 0.0 {
                continue;
            }
            for j in 0..d {
                m.data[i * d + j] += sik * t.at(k, j);
            }
        }
    }
    // Symmetrise away the rounding.
    for i in 0..d {
        for j in 0..i {
            let x = 0.5 * (m.at(i, j) + m.at(j, i));
            m.data[i * d + j] = x;
            m.data[j * d + i] = x;
        }
    }
    let tr_sqrt: f64 = symmetric_eigen(&m, false)
        .values
        .iter()
        .map(|&l| l.max(0.0).sqrt())
        .sum();
    Ok(diff + a.cov.trace() + b.cov.trace() - 2.0 * tr_sqrt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_sets_are_at_distance_zero_and_shifts_add_their_square() {
        let a: Vec<Vec<f32>> = (0..9)
            .map(|i| (0..4).map(|j| ((i * 7 + j * 3) % 5) as f32 - 1.5).collect())
            .collect();
        let ga = Gaussian::fit(&a).unwrap();
        assert!(frechet_distance(&ga, &ga).unwrap().abs() < 1e-9);
        let shifted: Vec<Vec<f32>> = a
            .iter()
            .map(|v| v.iter().map(|x| x + 2.0).collect())
            .collect();
        let gb = Gaussian::fit(&shifted).unwrap();
        assert!((frechet_distance(&ga, &gb).unwrap() - 16.0).abs() < 1e-9);
        assert_eq!(Gaussian::fit(&a[..1]).unwrap_err(), FrechetError::TooFew(1));
    }
}
