//! Exact nearest-neighbour search over int8 descriptors (brute force), in two steps.
//!
//! Every row is one view of one catalogue entry. First every row gets the cosine of the
//! quantized vectors (an integer dot product times the two inverse norms, computed once at
//! load) and the [`RERANK`] best rows are kept. Then those are re-scored cell by cell
//! (rows are `cells × cell_dim` values): the mean of the per-cell cosines without the
//! [`TRIM`] worst cells, so a part of the sleeve hidden by a hand, a sticker or glare does
//! not sink the right entry. The search returns the best entry and the best score of any
//! *other* entry, so a caller can ask for a margin between the two.

use alloc::vec::Vec;

/// Rows of int8 vectors, each owned by an entry.
#[derive(Clone, Debug, Default)]
pub struct Index {
    dim: usize,
    cell_dim: usize,
    vectors: Vec<i8>,
    owner: Vec<u32>,
    inv_norm: Vec<f32>,
}

/// The result of a search.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    /// Index of the best entry.
    pub entry: u32,
    /// Its similarity (trimmed mean of per-cell cosines), in `[-1, 1]`.
    pub score: f32,
    /// The best similarity of any other entry (`-1` when there is none).
    pub second: f32,
}

/// One entry's similarity to a query, with the row (view) that gave it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scored {
    /// Index of the entry.
    pub entry: u32,
    /// The row of [`Index`] that scored best.
    pub row: usize,
    /// Trimmed cell score, in `[-1, 1]`.
    pub score: f32,
}

/// Why rows cannot form an index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexError(pub alloc::string::String);

impl core::fmt::Display for IndexError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for IndexError {}

/// Rows re-scored cell by cell after the first, global step.
pub const RERANK: usize = 32;
/// Worst cells left out of the trimmed mean (of 16).
pub const TRIM: usize = 4;

impl Index {
    /// An index over `vectors` (`owner.len()` rows of `dim` values, each `dim / cell_dim`
    /// cells); `owner[r]` is the entry row `r` belongs to.
    pub fn new(
        dim: usize,
        cell_dim: usize,
        vectors: Vec<i8>,
        owner: Vec<u32>,
    ) -> Result<Self, IndexError> {
        if dim == 0 || cell_dim == 0 || !dim.is_multiple_of(cell_dim) {
            return Err(IndexError(alloc::format!(
                "dimension {dim} is not a positive multiple of the cell size {cell_dim}"
            )));
        }
        if vectors.len() != owner.len() * dim {
            return Err(IndexError(alloc::format!(
                "{} values for {} rows of {dim}",
                vectors.len(),
                owner.len()
            )));
        }
        let inv_norm = vectors.chunks_exact(dim).map(inv_norm).collect();
        Ok(Self {
            dim,
            cell_dim,
            vectors,
            owner,
            inv_norm,
        })
    }

    /// Vector length.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Number of rows (views).
    pub fn rows(&self) -> usize {
        self.owner.len()
    }

    /// The vector of row `r` (`None` past the last row).
    pub fn row(&self, r: usize) -> Option<&[i8]> {
        self.vectors.get(r * self.dim..(r + 1) * self.dim)
    }

    /// The best entry for `query` (length [`Index::dim`]) and the runner-up's score;
    /// `None` for an empty index, a zero query or a query of the wrong length.
    pub fn search(&self, query: &[i8]) -> Option<Hit> {
        let top = self.top_entries(query, 2);
        let best = top.first()?;
        Some(Hit {
            entry: best.entry,
            score: best.score,
            second: top.get(1).map_or(-1.0, |s| s.score.max(-1.0)),
        })
    }

    /// Up to `k` distinct entries most similar to `query`, best first, each with its
    /// best-scoring row: the [`RERANK`] best rows by global cosine, re-scored by the
    /// trimmed cell score. Empty for an empty index, a zero query or a wrong length.
    pub fn top_entries(&self, query: &[i8], k: usize) -> Vec<Scored> {
        let mut out: Vec<Scored> = Vec::new();
        if query.len() != self.dim || self.owner.is_empty() || k == 0 {
            return out;
        }
        let q_inv = inv_norm(query);
        if q_inv == 0.0 {
            return out;
        }
        // 1. global cosine, keeping the RERANK best rows (sorted, best first).
        let mut top: Vec<(f32, usize)> = Vec::with_capacity(RERANK + 1);
        for (r, (row, &inv)) in self
            .vectors
            .chunks_exact(self.dim)
            .zip(&self.inv_norm)
            .enumerate()
        {
            let s = dot(row, query) as f32 * inv * q_inv;
            if top.len() == RERANK && s <= top[RERANK - 1].0 {
                continue;
            }
            let at = top.partition_point(|(t, _)| *t >= s);
            top.insert(at, (s, r));
            top.truncate(RERANK);
        }
        // 2. trimmed per-cell similarity of those rows, the best row per entry.
        for &(_, r) in &top {
            let row = &self.vectors[r * self.dim..(r + 1) * self.dim];
            let score = self.cell_score(row, query);
            let entry = self.owner[r];
            match out.iter_mut().find(|s| s.entry == entry) {
                Some(s) if s.score >= score => {}
                Some(s) => {
                    *s = Scored {
                        entry,
                        row: r,
                        score,
                    }
                }
                None => out.push(Scored {
                    entry,
                    row: r,
                    score,
                }),
            }
        }
        out.sort_by(|a, b| b.score.total_cmp(&a.score));
        out.truncate(k);
        out
    }

    /// Mean of the per-cell cosines of two rows without the [`TRIM`] lowest (none are
    /// dropped when there are fewer than `2 · TRIM` cells).
    pub fn cell_score(&self, a: &[i8], b: &[i8]) -> f32 {
        let mut cos: Vec<f32> = a
            .chunks_exact(self.cell_dim)
            .zip(b.chunks_exact(self.cell_dim))
            .map(|(x, y)| {
                let (nx, ny) = (inv_norm(x), inv_norm(y));
                dot(x, y) as f32 * nx * ny
            })
            .collect();
        let drop = if cos.len() >= 2 * TRIM { TRIM } else { 0 };
        cos.sort_by(f32::total_cmp);
        let kept = &cos[drop..];
        kept.iter().sum::<f32>() / kept.len().max(1) as f32
    }
}

/// Integer dot product of two int8 vectors of equal length. Written so LLVM vectorises it
/// (widening multiply-adds); a 512-long product cannot overflow `i32`.
pub fn dot(a: &[i8], b: &[i8]) -> i32 {
    const LANES: usize = 16;
    let mut acc = [0i32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..LANES {
            acc[k] += i32::from(x[k]) * i32::from(y[k]);
        }
    }
    let tail: i32 = ra
        .iter()
        .zip(rb)
        .map(|(x, y)| i32::from(*x) * i32::from(*y))
        .sum();
    acc.iter().sum::<i32>() + tail
}

fn inv_norm(v: &[i8]) -> f32 {
    let n2: i64 = v.iter().map(|x| i64::from(*x) * i64::from(*x)).sum();
    if n2 == 0 {
        0.0
    } else {
        1.0 / libm::sqrtf(n2 as f32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// Entry 0 has two views, entry 1 one, entry 2 one.
    fn four_rows() -> Index {
        let rows: Vec<i8> = vec![
            10, 0, 0, //
            9, 3, 0, //
            0, 10, 0, //
            7, 7, 0,
        ];
        Index::new(3, 3, rows, vec![0, 0, 1, 2]).unwrap()
    }

    #[test]
    fn finds_the_best_entry_and_the_best_other_entry() {
        let idx = four_rows();
        let hit = idx.search(&[10, 1, 0]).unwrap();
        assert_eq!(hit.entry, 0);
        assert!(hit.score > 0.99);
        // Runner-up is entry 2 (7,7,0), not entry 0's second view.
        let want = (70.0 + 7.0) / ((98.0f32).sqrt() * (101.0f32).sqrt());
        assert!((hit.second - want).abs() < 1e-5, "{} vs {want}", hit.second);
    }

    #[test]
    fn top_entries_are_distinct_and_sorted() {
        let idx = four_rows();
        let top = idx.top_entries(&[9, 3, 0], 5);
        let entries: Vec<u32> = top.iter().map(|s| s.entry).collect();
        assert_eq!(entries, vec![0, 2, 1], "one line per entry, best first");
        assert_eq!(top[0].row, 1, "entry 0's second view matches exactly");
        assert!(top.windows(2).all(|w| w[0].score >= w[1].score));
        assert_eq!(idx.row(1), Some(&[9i8, 3, 0][..]));
        assert_eq!(idx.row(4), None);
        assert_eq!(idx.top_entries(&[9, 3, 0], 1).len(), 1);
        assert!(idx.top_entries(&[9, 3, 0], 0).is_empty());
    }

    #[test]
    fn bad_queries_and_shapes() {
        assert!(Index::new(3, 3, vec![1, 2], vec![0]).is_err());
        assert!(Index::new(0, 1, vec![], vec![]).is_err());
        assert!(Index::new(4, 3, vec![0; 4], vec![0]).is_err());
        let idx = Index::new(2, 2, vec![1, 1], vec![0]).unwrap();
        assert!(idx.search(&[1]).is_none());
        assert!(idx.search(&[0, 0]).is_none());
        let one = idx.search(&[1, 1]).unwrap();
        assert_eq!(one.second, -1.0);
        assert!(Index::default().search(&[]).is_none());
    }

    #[test]
    fn trimmed_cell_score_ignores_the_worst_cells() {
        // 8 cells of 2 values: b equals a except two cells flipped (an occlusion).
        let a: Vec<i8> = (0..16)
            .map(|i| if i % 2 == 0 { 50 } else { -20 + i as i8 })
            .collect();
        let mut b = a.clone();
        for v in &mut b[0..4] {
            *v = -*v;
        }
        let idx = Index::new(16, 2, a.clone(), vec![0]).unwrap();
        let plain = dot(&a, &b) as f32 * inv_norm(&a) * inv_norm(&b);
        let trimmed = idx.cell_score(&a, &b);
        assert!(
            (trimmed - 1.0).abs() < 1e-5,
            "two hidden cells of 8 dropped: {trimmed}"
        );
        assert!(plain < 0.8, "{plain}");
        assert!((idx.cell_score(&a, &a) - 1.0).abs() < 1e-5);
    }

    #[test]
    fn dot_matches_the_plain_sum() {
        let a: Vec<i8> = (0..37).map(|i| (i * 7 % 255 - 127) as i8).collect();
        let b: Vec<i8> = (0..37).map(|i| (i * 13 % 255 - 127) as i8).collect();
        let plain: i32 = a.iter().zip(&b).map(|(x, y)| *x as i32 * *y as i32).sum();
        assert_eq!(dot(&a, &b), plain);
        assert_eq!(dot(&[-128; 512], &[-128; 512]), 512 * 16384);
    }
}
