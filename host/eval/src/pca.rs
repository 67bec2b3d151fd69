//! Principal component analysis, for 2-D scatter plots of embeddings.
//!
//! Top components by subspace (block power) iteration with Rayleigh–Ritz on the centred
//! data: `C·Q = Xᵀ(X·Q)/(n−1)` is computed without forming the `d×d` covariance, so
//! 1280-dimensional embeddings of thousands of covers take a fraction of a second. The small
//! projected problem is solved with cyclic Jacobi rotations.

use serde::{Deserialize, Serialize};
use sleeve_shared::rng::SplitMix64;

use crate::error::{Result, invalid};

/// Extra block vectors beyond the requested components (faster, safer convergence).
const OVERSAMPLE: usize = 8;
/// Iteration cap.
const MAX_ITERS: usize = 300;
/// Converged when every wanted Ritz pair has `‖C·u − λ·u‖ ≤ TOL · λ_max`.
const TOL: f64 = 1e-9;

/// A fitted PCA: mean and principal axes, largest variance first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pca {
    /// Per-feature mean subtracted before projecting.
    pub mean: Vec<f64>,
    /// Unit-length principal axes (`n_components × dim`); each is signed so that its
    /// largest-magnitude coordinate is positive.
    pub components: Vec<Vec<f64>>,
    /// Variance along each axis (sample variance, `n − 1` denominator).
    pub explained_variance: Vec<f64>,
    /// `explained_variance / total variance` (0 when the data has no variance).
    pub explained_variance_ratio: Vec<f64>,
}

impl Pca {
    /// Fits `n_components` axes to `data` (one row per sample, at least two rows).
    pub fn fit(data: &[Vec<f32>], n_components: usize) -> Result<Self> {
        let n = data.len();
        if n < 2 {
            return Err(invalid!("PCA needs at least 2 samples, got {n}"));
        }
        let d = data[0].len();
        if n_components == 0 || n_components > d {
            return Err(invalid!(
                "cannot take {n_components} components of {d}-dimensional data"
            ));
        }
        for (i, row) in data.iter().enumerate() {
            if row.len() != d {
                return Err(invalid!(
                    "PCA row {i} has {} values, expected {d}",
                    row.len()
                ));
            }
            if row.iter().any(|v| !v.is_finite()) {
                return Err(invalid!("PCA row {i} has a non-finite value"));
            }
        }
        let mut mean = vec![0f64; d];
        for row in data {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += f64::from(v);
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let x: Vec<f64> = data
            .iter()
            .flat_map(|row| row.iter().zip(&mean).map(|(&v, m)| f64::from(v) - m))
            .collect();
        let total: f64 = x.iter().map(|v| v * v).sum::<f64>() / (n - 1) as f64;
        let cov = Covariance { x: &x, n, d };
        let (values, vectors) = top_eigenpairs(&cov, n_components);
        let components: Vec<Vec<f64>> = vectors.into_iter().map(fix_sign).collect();
        let explained_variance: Vec<f64> = values.iter().map(|v| v.max(0.0)).collect();
        let explained_variance_ratio = explained_variance
            .iter()
            .map(|v| if total > 0.0 { v / total } else { 0.0 })
            .collect();
        Ok(Self {
            mean,
            components,
            explained_variance,
            explained_variance_ratio,
        })
    }

    /// Coordinates of one sample along the components.
    pub fn transform(&self, x: &[f32]) -> Result<Vec<f32>> {
        if x.len() != self.mean.len() {
            return Err(invalid!(
                "sample has {} values, PCA was fitted on {}",
                x.len(),
                self.mean.len()
            ));
        }
        Ok(self
            .components
            .iter()
            .map(|c| {
                c.iter()
                    .zip(x.iter().zip(&self.mean))
                    .map(|(ci, (&xi, m))| ci * (f64::from(xi) - m))
                    .sum::<f64>() as f32
            })
            .collect())
    }
}

/// Fits a 2-component PCA and returns it with every sample's 2-D coordinates.
pub fn pca_2d(data: &[Vec<f32>]) -> Result<(Pca, Vec<[f32; 2]>)> {
    let pca = Pca::fit(data, 2)?;
    let points = data
        .iter()
        .map(|row| pca.transform(row).map(|p| [p[0], p[1]]))
        .collect::<Result<_>>()?;
    Ok((pca, points))
}

/// The sample covariance of centred data `x` (`n × d`, row-major), applied implicitly.
struct Covariance<'a> {
    x: &'a [f64],
    n: usize,
    d: usize,
}

impl Covariance<'_> {
    /// `C·v` for each column vector `v` in `vs`.
    fn apply(&self, vs: &[Vec<f64>]) -> Vec<Vec<f64>> {
        let mut out = vec![vec![0f64; self.d]; vs.len()];
        let mut proj = vec![0f64; vs.len()];
        for row in self.x.chunks_exact(self.d) {
            for (p, v) in proj.iter_mut().zip(vs) {
                *p = dot(row, v);
            }
            for (o, &p) in out.iter_mut().zip(&proj) {
                for (oi, &ri) in o.iter_mut().zip(row) {
                    *oi += p * ri;
                }
            }
        }
        let scale = 1.0 / (self.n - 1) as f64;
        out.iter_mut().flatten().for_each(|v| *v *= scale);
        out
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Deterministic pseudo-random numbers in `[-1, 1)`.
fn splitmix(rng: &mut SplitMix64) -> f64 {
    2.0 * rng.next_f64() - 1.0
}

/// Orthonormalises `vs` in place (modified Gram–Schmidt, twice); a column that collapses
/// (rank deficiency) is replaced by a fresh random direction.
fn orthonormalise(vs: &mut [Vec<f64>], rng: &mut SplitMix64) {
    for i in 0..vs.len() {
        for attempt in 0..4 {
            for _ in 0..2 {
                for j in 0..i {
                    let (done, rest) = vs.split_at_mut(i);
                    let c = dot(&rest[0], &done[j]);
                    rest[0]
                        .iter_mut()
                        .zip(&done[j])
                        .for_each(|(a, b)| *a -= c * b);
                }
            }
            let norm = dot(&vs[i], &vs[i]).sqrt();
            if norm > 1e-12 || attempt == 3 {
                let inv = if norm > 0.0 { 1.0 / norm } else { 0.0 };
                vs[i].iter_mut().for_each(|v| *v *= inv);
                break;
            }
            vs[i].iter_mut().for_each(|v| *v = splitmix(rng));
        }
    }
}

/// Eigen-decomposition of a small symmetric matrix by cyclic Jacobi rotations: eigenvalues
/// falling, with eigenvectors as columns of the returned `V` (`v[row][col]`).
fn jacobi_eigen(mut a: Vec<Vec<f64>>) -> (Vec<f64>, Vec<Vec<f64>>) {
    let p = a.len();
    let mut v: Vec<Vec<f64>> = (0..p)
        .map(|i| (0..p).map(|j| f64::from(u8::from(i == j))).collect())
        .collect();
    for _sweep in 0..100 {
        let off: f64 = (0..p)
            .flat_map(|i| (0..p).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i][j] * a[i][j])
            .sum();
        let scale: f64 = (0..p)
            .map(|i| a[i][i] * a[i][i])
            .sum::<f64>()
            .max(f64::MIN_POSITIVE);
        if off <= 1e-30 * scale {
            break;
        }
        for i in 0..p {
            for j in i + 1..p {
                if a[i][j].abs() < f64::MIN_POSITIVE {
                    continue;
                }
                // Rotation that zeroes a[i][j].
                let theta = (a[j][j] - a[i][i]) / (2.0 * a[i][j]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for row in a.iter_mut() {
                    let (aki, akj) = (row[i], row[j]);
                    row[i] = c * aki - s * akj;
                    row[j] = s * aki + c * akj;
                }
                let (lo, hi) = a.split_at_mut(j); // i < j
                for (x, y) in lo[i].iter_mut().zip(hi[0].iter_mut()) {
                    let (aik, ajk) = (*x, *y);
                    *x = c * aik - s * ajk;
                    *y = s * aik + c * ajk;
                }
                for row in v.iter_mut() {
                    let (vi, vj) = (row[i], row[j]);
                    row[i] = c * vi - s * vj;
                    row[j] = s * vi + c * vj;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..p).collect();
    order.sort_by(|&x, &y| a[y][y].total_cmp(&a[x][x]));
    let values = order.iter().map(|&i| a[i][i]).collect();
    let vectors = (0..p)
        .map(|r| order.iter().map(|&c| v[r][c]).collect())
        .collect();
    (values, vectors)
}

/// The `k` largest eigenpairs of the covariance.
fn top_eigenpairs(cov: &Covariance, k: usize) -> (Vec<f64>, Vec<Vec<f64>>) {
    let p = (k + OVERSAMPLE).min(cov.d);
    let mut rng = SplitMix64::new(0x5EED);
    let mut q: Vec<Vec<f64>> = (0..p)
        .map(|_| (0..cov.d).map(|_| splitmix(&mut rng)).collect())
        .collect();
    orthonormalise(&mut q, &mut rng);
    let mut values = vec![0f64; p];
    let mut ritz = q.clone();
    for iter in 0..MAX_ITERS {
        let y = cov.apply(&q);
        // Rayleigh–Ritz: H = Qᵀ C Q, rotate the block onto H's eigenvectors.
        let h: Vec<Vec<f64>> = (0..p)
            .map(|i| {
                (0..p)
                    .map(|j| 0.5 * (dot(&q[i], &y[j]) + dot(&q[j], &y[i])))
                    .collect()
            })
            .collect();
        let (vals, vecs) = jacobi_eigen(h);
        let combine = |basis: &[Vec<f64>], col: usize| -> Vec<f64> {
            let mut out = vec![0f64; cov.d];
            for (b, row) in basis.iter().zip(&vecs) {
                out.iter_mut().zip(b).for_each(|(o, x)| *o += row[col] * x);
            }
            out
        };
        ritz = (0..p).map(|c| combine(&q, c)).collect();
        let cu: Vec<Vec<f64>> = (0..p).map(|c| combine(&y, c)).collect();
        values = vals;
        let lmax = values[0].abs().max(f64::MIN_POSITIVE);
        let converged = (0..k).all(|c| {
            let r: f64 = cu[c]
                .iter()
                .zip(&ritz[c])
                .map(|(a, u)| (a - values[c] * u).powi(2))
                .sum();
            r.sqrt() <= TOL * lmax
        });
        if converged || p == cov.d {
            tracing::debug!(iterations = iter + 1, "PCA converged");
            break;
        }
        q = cu;
        orthonormalise(&mut q, &mut rng);
    }
    values.truncate(k);
    ritz.truncate(k);
    (values, ritz)
}

fn fix_sign(mut v: Vec<f64>) -> Vec<f64> {
    let big = v
        .iter()
        .copied()
        .fold(0f64, |m, x| if x.abs() > m.abs() { x } else { m });
    if big < 0.0 {
        v.iter_mut().for_each(|x| *x = -*x);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_the_axis_of_a_noisy_line() {
        // Points along (1, 2, 2)/3 in 3-D with a small perpendicular wobble.
        let dir = [1.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0];
        let perp = [2.0 / 3.0, 1.0 / 3.0, -2.0 / 3.0];
        let data: Vec<Vec<f32>> = (0..50)
            .map(|i| {
                let t = i as f64 - 25.0;
                let w = if i % 2 == 0 { 0.1 } else { -0.1 };
                (0..3)
                    .map(|j| (5.0 + t * dir[j] + w * perp[j]) as f32)
                    .collect()
            })
            .collect();
        let pca = Pca::fit(&data, 2).unwrap();
        for (c, want) in pca.components[0].iter().zip(dir) {
            assert!((c - want).abs() < 1e-3, "{:?}", pca.components[0]);
        }
        for (c, want) in pca.components[1].iter().zip(perp) {
            assert!((c - want).abs() < 1e-3, "{:?}", pca.components[1]);
        }
        assert!(pca.explained_variance_ratio[0] > 0.999);
        // Variance of t = -25..24 (n − 1 denominator).
        let var_t: f64 = (0..50).map(|i| (i as f64 - 24.5).powi(2)).sum::<f64>() / 49.0;
        assert!((pca.explained_variance[0] - var_t).abs() / var_t < 1e-3);
        // Projection: the mean maps to the origin.
        let mid = pca
            .transform(&[5.0 - 0.5 / 3.0, 5.0 - 1.0 / 3.0, 5.0 - 1.0 / 3.0])
            .unwrap();
        assert!(mid[0].abs() < 1e-3, "{mid:?}");
    }

    #[test]
    fn high_dimensional_block_iteration_matches_planted_variances() {
        // 40-D data: coordinate 3 has variance ~9, coordinate 17 ~4, others tiny.
        let mut rng = SplitMix64::new(7);
        let data: Vec<Vec<f32>> = (0..400)
            .map(|_| {
                (0..40)
                    .map(|j| {
                        let s = match j {
                            3 => 3.0 * 1.7,
                            17 => 2.0 * 1.7,
                            _ => 0.05,
                        };
                        (s * splitmix(&mut rng)) as f32
                    })
                    .collect()
            })
            .collect();
        let (pca, pts) = pca_2d(&data).unwrap();
        assert!(pca.components[0][3].abs() > 0.99, "{:?}", pca.components[0]);
        assert!(pca.components[1][17].abs() > 0.99);
        assert_eq!(pts.len(), 400);
        assert!(pca.explained_variance[0] > pca.explained_variance[1]);
    }

    #[test]
    fn rank_deficient_and_bad_input() {
        // A perfect 2-D line: second component has zero variance but is still unit length.
        let data: Vec<Vec<f32>> = (0..5).map(|i| vec![i as f32, i as f32]).collect();
        let pca = Pca::fit(&data, 2).unwrap();
        let s = std::f64::consts::FRAC_1_SQRT_2;
        assert!((pca.components[0][0] - s).abs() < 1e-9 && (pca.components[0][1] - s).abs() < 1e-9);
        assert!(pca.explained_variance[1].abs() < 1e-9);
        assert!((dot(&pca.components[1], &pca.components[1]) - 1.0).abs() < 1e-9);
        assert!(Pca::fit(&data[..1], 1).is_err());
        assert!(Pca::fit(&data, 3).is_err());
        assert!(Pca::fit(&[vec![1.0, 2.0], vec![1.0]], 1).is_err());
        assert!(pca.transform(&[1.0]).is_err());
    }

    #[test]
    fn jacobi_solves_a_known_matrix() {
        // [[2, 1], [1, 2]] has eigenvalues 3 and 1.
        let (vals, vecs) = jacobi_eigen(vec![vec![2.0, 1.0], vec![1.0, 2.0]]);
        assert!((vals[0] - 3.0).abs() < 1e-12 && (vals[1] - 1.0).abs() < 1e-12);
        assert!((vecs[0][0].abs() - vecs[1][0].abs()).abs() < 1e-12);
    }
}
