//! k-nearest-neighbour classifier: the baseline the seeds are compared against.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};

/// How neighbours are measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Distance {
    /// `1 − cos(a, b)`; a zero vector is at distance 1 from everything.
    #[default]
    Cosine,
    /// Euclidean distance.
    L2,
}

/// How neighbours vote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Weighting {
    /// One vote each: probabilities are vote fractions.
    #[default]
    Uniform,
    /// Votes weighted by `1 / (distance + 1e-6)`, normalised to sum 1.
    InverseDistance,
}

/// Prediction settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnnParams {
    /// Neighbours consulted (capped at the training-set size).
    pub k: usize,
    /// Distance.
    pub distance: Distance,
    /// Vote weighting.
    pub weighting: Weighting,
}

impl Default for KnnParams {
    fn default() -> Self {
        Self {
            k: 5,
            distance: Distance::Cosine,
            weighting: Weighting::Uniform,
        }
    }
}

/// A fitted k-NN model: the training vectors, their labels and their norms.
#[derive(Clone, Debug)]
pub struct Knn {
    data: Vec<f32>,
    norms: Vec<f32>,
    labels: Vec<usize>,
    dim: usize,
    n_classes: usize,
}

/// One neighbour of a query.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Neighbour {
    /// Index into the training set.
    pub index: usize,
    /// Its class.
    pub label: usize,
    /// Its distance to the query.
    pub distance: f32,
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

impl Knn {
    /// Stores the training set. All vectors must have the same length and finite values;
    /// labels must be `< n_classes`.
    pub fn fit(features: &[Vec<f32>], labels: &[usize], n_classes: usize) -> Result<Self> {
        if features.is_empty() {
            return Err(invalid!("k-NN needs at least one training vector"));
        }
        if features.len() != labels.len() {
            return Err(invalid!(
                "{} training vectors but {} labels",
                features.len(),
                labels.len()
            ));
        }
        let dim = features[0].len();
        if dim == 0 {
            return Err(invalid!("training vectors are empty"));
        }
        let mut data = Vec::with_capacity(dim * features.len());
        for (i, f) in features.iter().enumerate() {
            if f.len() != dim {
                return Err(invalid!(
                    "training vector {i} has {} values, expected {dim}",
                    f.len()
                ));
            }
            if f.iter().any(|v| !v.is_finite()) {
                return Err(invalid!("training vector {i} has a non-finite value"));
            }
            if labels[i] >= n_classes {
                return Err(invalid!(
                    "label {} of training vector {i} is out of range for {n_classes} classes",
                    labels[i]
                ));
            }
            data.extend_from_slice(f);
        }
        let norms = data.chunks_exact(dim).map(norm).collect();
        Ok(Self {
            data,
            norms,
            labels: labels.to_vec(),
            dim,
            n_classes,
        })
    }

    /// Training-set size.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Always false: `fit` rejects an empty training set.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Feature dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of classes (length of the probability vectors).
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    fn check_query(&self, query: &[f32]) -> Result<()> {
        if query.len() != self.dim {
            return Err(invalid!(
                "query has {} values, the model was fitted on {}",
                query.len(),
                self.dim
            ));
        }
        if query.iter().any(|v| !v.is_finite()) {
            return Err(invalid!("query has a non-finite value"));
        }
        Ok(())
    }

    fn distance(&self, i: usize, query: &[f32], qnorm: f32, distance: Distance) -> f32 {
        let row = &self.data[i * self.dim..(i + 1) * self.dim];
        match distance {
            Distance::L2 => row
                .iter()
                .zip(query)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f32>()
                .sqrt(),
            Distance::Cosine => {
                let den = self.norms[i] * qnorm;
                if den == 0.0 {
                    1.0
                } else {
                    let dot: f32 = row.iter().zip(query).map(|(a, b)| a * b).sum();
                    (1.0 - dot / den).max(0.0)
                }
            }
        }
    }

    /// The `k` nearest training vectors, nearest first (ties: lower index first), skipping
    /// training index `exclude` (for leave-one-out).
    fn nearest(
        &self,
        query: &[f32],
        k: usize,
        distance: Distance,
        exclude: Option<usize>,
    ) -> Vec<Neighbour> {
        let qnorm = norm(query);
        let mut all: Vec<Neighbour> = (0..self.len())
            .filter(|&i| Some(i) != exclude)
            .map(|i| Neighbour {
                index: i,
                label: self.labels[i],
                distance: self.distance(i, query, qnorm, distance),
            })
            .collect();
        let k = k.min(all.len());
        let cmp = |a: &Neighbour, b: &Neighbour| {
            a.distance
                .total_cmp(&b.distance)
                .then(a.index.cmp(&b.index))
        };
        if k < all.len() {
            all.select_nth_unstable_by(k, cmp);
            all.truncate(k);
        }
        all.sort_by(cmp);
        all
    }

    /// The `k` nearest training vectors of `query`, nearest first.
    pub fn neighbours(
        &self,
        query: &[f32],
        k: usize,
        distance: Distance,
    ) -> Result<Vec<Neighbour>> {
        self.check_query(query)?;
        Ok(self.nearest(query, k, distance, None))
    }

    fn vote(&self, neighbours: &[Neighbour], weighting: Weighting) -> Vec<f32> {
        let mut p = vec![0f32; self.n_classes];
        for n in neighbours {
            p[n.label] += match weighting {
                Weighting::Uniform => 1.0,
                Weighting::InverseDistance => 1.0 / (n.distance + 1e-6),
            };
        }
        let total: f32 = p.iter().sum();
        if total > 0.0 {
            p.iter_mut().for_each(|v| *v /= total);
        }
        p
    }

    /// Class probabilities of one query (vote fractions, or normalised inverse-distance
    /// weights).
    pub fn predict_proba(&self, query: &[f32], params: &KnnParams) -> Result<Vec<f32>> {
        if params.k == 0 {
            return Err(invalid!("k must be at least 1"));
        }
        self.check_query(query)?;
        Ok(self.vote(
            &self.nearest(query, params.k, params.distance, None),
            params.weighting,
        ))
    }

    /// [`Self::predict_proba`] for many queries, in parallel; the error names the query.
    pub fn predict_proba_batch(
        &self,
        queries: &[Vec<f32>],
        params: &KnnParams,
    ) -> Result<Vec<Vec<f32>>> {
        queries
            .par_iter()
            .enumerate()
            .map(|(i, q)| {
                self.predict_proba(q, params)
                    .map_err(|e| invalid!("query {i}: {e}"))
            })
            .collect()
    }

    /// Leave-one-out probabilities of every training vector (each is classified by the
    /// others): an honest estimate when there is no separate test split.
    pub fn leave_one_out(&self, params: &KnnParams) -> Result<Vec<Vec<f32>>> {
        if params.k == 0 {
            return Err(invalid!("k must be at least 1"));
        }
        Ok((0..self.len())
            .into_par_iter()
            .map(|i| {
                let q = &self.data[i * self.dim..(i + 1) * self.dim];
                self.vote(
                    &self.nearest(q, params.k, params.distance, Some(i)),
                    params.weighting,
                )
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two clusters: class 0 near (1, 0), class 1 near (0, 1).
    fn toy() -> Knn {
        let x = vec![
            vec![1.0, 0.0],
            vec![0.9, 0.1],
            vec![1.0, 0.2],
            vec![0.0, 1.0],
            vec![0.1, 0.9],
            vec![0.2, 1.0],
        ];
        Knn::fit(&x, &[0, 0, 0, 1, 1, 1], 3).unwrap()
    }

    #[test]
    fn votes_are_fractions() {
        let m = toy();
        let p = m
            .predict_proba(
                &[0.95, 0.05],
                &KnnParams {
                    k: 3,
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(p, vec![1.0, 0.0, 0.0]);
        let p = m
            .predict_proba(
                &[0.8, 0.2],
                &KnnParams {
                    k: 4,
                    distance: Distance::L2,
                    weighting: Weighting::Uniform,
                },
            )
            .unwrap();
        assert_eq!(p, vec![0.75, 0.25, 0.0]);
        // k larger than the training set is capped.
        let p = m
            .predict_proba(
                &[1.0, 1.0],
                &KnnParams {
                    k: 100,
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(p, vec![0.5, 0.5, 0.0]);
    }

    #[test]
    fn inverse_distance_favours_the_closest() {
        let x = vec![vec![0.0], vec![3.0], vec![4.0]];
        let m = Knn::fit(&x, &[0, 1, 1], 2).unwrap();
        let params = KnnParams {
            k: 3,
            distance: Distance::L2,
            weighting: Weighting::InverseDistance,
        };
        // Query 1: distances 1, 2, 3 → weights 1, 1/2, 1/3 → class 0 gets 1 / (11/6) = 6/11.
        let p = m.predict_proba(&[1.0], &params).unwrap();
        assert!((p[0] - 6.0 / 11.0).abs() < 1e-4, "{p:?}");
        let uniform = m
            .predict_proba(
                &[1.0],
                &KnnParams {
                    weighting: Weighting::Uniform,
                    ..params
                },
            )
            .unwrap();
        assert!(uniform[0] < p[0]);
    }

    #[test]
    fn neighbours_are_sorted_and_leave_one_out_excludes_self() {
        let m = toy();
        let n = m.neighbours(&[0.0, 1.0], 2, Distance::L2).unwrap();
        assert_eq!(n[0].index, 3);
        assert_eq!(n[0].distance, 0.0);
        assert_eq!(n[1].index, 4);
        let loo = m
            .leave_one_out(&KnnParams {
                k: 1,
                ..Default::default()
            })
            .unwrap();
        for (i, p) in loo.iter().enumerate() {
            assert_eq!(p[if i < 3 { 0 } else { 1 }], 1.0, "sample {i}");
        }
        let batch = m
            .predict_proba_batch(&[vec![1.0, 0.0], vec![0.0, 1.0]], &KnnParams::default())
            .unwrap();
        assert_eq!(batch.len(), 2);
        assert!(batch[0][0] > batch[0][1] && batch[1][1] > batch[1][0]);
    }

    #[test]
    fn bad_input() {
        assert!(Knn::fit(&[], &[], 2).is_err());
        assert!(Knn::fit(&[vec![1.0], vec![1.0, 2.0]], &[0, 0], 2).is_err());
        assert!(Knn::fit(&[vec![1.0]], &[2], 2).is_err());
        assert!(Knn::fit(&[vec![f32::NAN]], &[0], 2).is_err());
        let m = toy();
        assert!(m.predict_proba(&[1.0], &KnnParams::default()).is_err());
        assert!(
            m.predict_proba(
                &[1.0, 0.0],
                &KnnParams {
                    k: 0,
                    ..Default::default()
                }
            )
            .is_err()
        );
        let err = m
            .predict_proba_batch(&[vec![1.0, 0.0], vec![1.0]], &KnnParams::default())
            .unwrap_err();
        assert!(err.to_string().contains("query 1"), "{err}");
    }
}
