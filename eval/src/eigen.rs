//! Eigen-decomposition of a real symmetric matrix in f64: Householder reduction to tridiagonal
//! form, then the implicit QL algorithm (the EISPACK `tred2`/`tql2` pair, as JAMA and
//! numpy's reference LAPACK paths do it in spirit). Used for the Fréchet distance's matrix
//! square root; `O(n³)`, fine for FID's 2048 dimensions.

// The algorithm indexes several arrays by the same counters; iterators would hide it.
#![allow(clippy::needless_range_loop)]

/// A dense square matrix, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Square {
    pub n: usize,
    pub data: Vec<f64>,
}

impl Square {
    pub fn zeros(n: usize) -> Self {
        Self {
            n,
            data: vec![0.0; n * n],
        }
    }

    #[inline]
    pub fn at(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.n + j]
    }

    #[inline]
    fn set(&mut self, i: usize, j: usize, v: f64) {
        self.data[i * self.n + j] = v;
    }

    pub fn trace(&self) -> f64 {
        (0..self.n).map(|i| self.at(i, i)).sum()
    }
}

/// Eigenvalues (ascending) and, when asked, the eigenvectors as the columns of a matrix.
pub struct Eigen {
    pub values: Vec<f64>,
    pub vectors: Option<Square>,
}

/// Eigenvalues and optionally eigenvectors of the symmetric matrix `a` (only its values are
/// read as given; asymmetry is the caller's rounding).
pub fn symmetric_eigen(a: &Square, vectors: bool) -> Eigen {
    let n = a.n;
    if n == 0 {
        return Eigen {
            values: Vec::new(),
            vectors: vectors.then(|| Square::zeros(0)),
        };
    }
    let mut v = a.clone();
    let mut d = vec![0.0; n];
    let mut e = vec![0.0; n];
    tridiagonalize(&mut v, &mut d, &mut e);
    ql(&mut v, &mut d, &mut e, vectors);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| d[i].total_cmp(&d[j]));
    let values = order.iter().map(|&i| d[i]).collect();
    let vectors = vectors.then(|| {
        let mut sorted = Square::zeros(n);
        for (col, &k) in order.iter().enumerate() {
            for r in 0..n {
                sorted.set(r, col, v.at(r, k));
            }
        }
        sorted
    });
    Eigen { values, vectors }
}

/// Householder reduction: `v` becomes the orthogonal transformation, `d` the diagonal and `e`
/// the sub-diagonal (in `e[1..]`).
fn tridiagonalize(v: &mut Square, d: &mut [f64], e: &mut [f64]) {
    let n = v.n;
    for j in 0..n {
        d[j] = v.at(n - 1, j);
    }
    for i in (1..n).rev() {
        let scale: f64 = d[..i].iter().map(|x| x.abs()).sum();
        let mut h = 0.0;
        if scale == 0.0 {
            e[i] = d[i - 1];
            for j in 0..i {
                d[j] = v.at(i - 1, j);
                v.set(i, j, 0.0);
                v.set(j, i, 0.0);
            }
        } else {
            for x in d[..i].iter_mut() {
                *x /= scale;
                h += *x * *x;
            }
            let f = d[i - 1];
            let mut g = h.sqrt();
            if f > 0.0 {
                g = -g;
            }
            e[i] = scale * g;
            h -= f * g;
            d[i - 1] = f - g;
            e[..i].fill(0.0);
            for j in 0..i {
                let f = d[j];
                v.set(j, i, f);
                let mut g = e[j] + v.at(j, j) * f;
                for k in j + 1..i {
                    g += v.at(k, j) * d[k];
                    e[k] += v.at(k, j) * f;
                }
                e[j] = g;
            }
            let mut f = 0.0;
            for j in 0..i {
                e[j] /= h;
                f += e[j] * d[j];
            }
            let hh = f / (h + h);
            for j in 0..i {
                e[j] -= hh * d[j];
            }
            for j in 0..i {
                let (f, g) = (d[j], e[j]);
                for k in j..i {
                    let x = v.at(k, j) - (f * e[k] + g * d[k]);
                    v.set(k, j, x);
                }
                d[j] = v.at(i - 1, j);
                v.set(i, j, 0.0);
            }
        }
        d[i] = h;
    }
    // Accumulate the transformations.
    for i in 0..n - 1 {
        let x = v.at(i, i);
        v.set(n - 1, i, x);
        v.set(i, i, 1.0);
        let h = d[i + 1];
        if h != 0.0 {
            for k in 0..=i {
                d[k] = v.at(k, i + 1) / h;
            }
            for j in 0..=i {
                let g: f64 = (0..=i).map(|k| v.at(k, i + 1) * v.at(k, j)).sum();
                for k in 0..=i {
                    let x = v.at(k, j) - g * d[k];
                    v.set(k, j, x);
                }
            }
        }
        for k in 0..=i {
            v.set(k, i + 1, 0.0);
        }
    }
    for j in 0..n {
        d[j] = v.at(n - 1, j);
        v.set(n - 1, j, 0.0);
    }
    v.set(n - 1, n - 1, 1.0);
    e[0] = 0.0;
}

/// Implicit QL on the tridiagonal `d`, `e`; rotates `v` when `vectors`.
fn ql(v: &mut Square, d: &mut [f64], e: &mut [f64], vectors: bool) {
    let n = v.n;
    for i in 1..n {
        e[i - 1] = e[i];
    }
    e[n - 1] = 0.0;
    let mut f = 0.0;
    let mut tst1: f64 = 0.0;
    let eps = f64::EPSILON;
    for l in 0..n {
        tst1 = tst1.max(d[l].abs() + e[l].abs());
        let mut m = l;
        while m < n - 1 && e[m].abs() > eps * tst1 {
            m += 1;
        }
        if m > l {
            loop {
                let g = d[l];
                let mut p = (d[l + 1] - g) / (2.0 * e[l]);
                let mut r = p.hypot(1.0);
                if p < 0.0 {
                    r = -r;
                }
                d[l] = e[l] / (p + r);
                d[l + 1] = e[l] * (p + r);
                let dl1 = d[l + 1];
                let mut h = g - d[l];
                for x in d[l + 2..].iter_mut() {
                    *x -= h;
                }
                f += h;
                p = d[m];
                let (mut c, mut c2, mut c3) = (1.0, 1.0, 1.0);
                let el1 = e[l + 1];
                let (mut s, mut s2) = (0.0, 0.0);
                for i in (l..m).rev() {
                    c3 = c2;
                    c2 = c;
                    s2 = s;
                    let g = c * e[i];
                    h = c * p;
                    r = p.hypot(e[i]);
                    e[i + 1] = s * r;
                    s = e[i] / r;
                    c = p / r;
                    p = c * d[i] - s * g;
                    d[i + 1] = h + s * (c * g + s * d[i]);
                    if vectors {
                        for k in 0..n {
                            let h = v.at(k, i + 1);
                            let vi = v.at(k, i);
                            v.set(k, i + 1, s * vi + c * h);
                            v.set(k, i, c * vi - s * h);
                        }
                    }
                }
                p = -s * s2 * c3 * el1 * e[l] / dl1;
                e[l] = s * p;
                d[l] = c * p;
                if e[l].abs() <= eps * tst1 {
                    break;
                }
            }
        }
        d[l] += f;
        e[l] = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconstructs_a_symmetric_matrix() {
        let n = 7;
        let mut a = Square::zeros(n);
        for i in 0..n {
            for j in 0..=i {
                let x = ((i * 31 + j * 17) % 13) as f64 / 3.0 - 2.0;
                a.set(i, j, x);
                a.set(j, i, x);
            }
        }
        let eig = symmetric_eigen(&a, true);
        let v = eig.vectors.unwrap();
        assert!(eig.values.windows(2).all(|w| w[0] <= w[1]));
        for i in 0..n {
            for j in 0..n {
                let back: f64 = (0..n)
                    .map(|k| v.at(i, k) * eig.values[k] * v.at(j, k))
                    .sum();
                assert!((back - a.at(i, j)).abs() < 1e-10, "{i},{j}");
                let dot: f64 = (0..n).map(|k| v.at(k, i) * v.at(k, j)).sum();
                assert!((dot - f64::from(u8::from(i == j))).abs() < 1e-10);
            }
        }
        let values_only = symmetric_eigen(&a, false).values;
        for (x, y) in values_only.iter().zip(&eig.values) {
            assert!((x - y).abs() < 1e-10);
        }
        assert!((eig.values.iter().sum::<f64>() - a.trace()).abs() < 1e-10);
    }
}
