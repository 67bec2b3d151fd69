//! A read-only view of a score matrix (one row of class scores per sample), whether it is
//! stored as `Vec<Vec<f32>>` or as one flat row-major buffer.

use crate::error::{Result, invalid};

/// Rows of per-class scores (usually probabilities), one row per sample.
///
/// Build it with `ScoreRows::from(&rows[..])`, `ScoreRows::from(&rows)` or
/// [`ScoreRows::flat`]; every metric that takes scores accepts `impl Into<ScoreRows>`.
#[derive(Clone, Copy, Debug)]
pub struct ScoreRows<'a> {
    inner: Inner<'a>,
}

#[derive(Clone, Copy, Debug)]
enum Inner<'a> {
    Rows(&'a [Vec<f32>]),
    Flat { data: &'a [f32], cols: usize },
}

impl<'a> ScoreRows<'a> {
    /// A flat row-major `n × cols` matrix. Fails when `data.len()` is not a multiple of
    /// `cols` or `cols` is 0.
    pub fn flat(data: &'a [f32], cols: usize) -> Result<Self> {
        if cols == 0 {
            return Err(invalid!("score matrix with 0 columns"));
        }
        if !data.len().is_multiple_of(cols) {
            return Err(invalid!(
                "flat score buffer of {} values is not a multiple of {cols} columns",
                data.len()
            ));
        }
        Ok(Self {
            inner: Inner::Flat { data, cols },
        })
    }

    /// Number of rows (samples).
    pub fn len(&self) -> usize {
        match self.inner {
            Inner::Rows(r) => r.len(),
            Inner::Flat { data, cols } => data.len() / cols,
        }
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `i`. Panics when out of range, like slice indexing.
    pub fn row(&self, i: usize) -> &'a [f32] {
        match self.inner {
            Inner::Rows(r) => &r[i],
            Inner::Flat { data, cols } => &data[i * cols..(i + 1) * cols],
        }
    }

    /// Iterator over rows.
    pub fn iter(&self) -> impl Iterator<Item = &'a [f32]> + '_ {
        (0..self.len()).map(|i| self.row(i))
    }

    /// Checks that every row has `n_classes` finite, non-negative values and that there
    /// are `n_rows` rows.
    pub(crate) fn validate_probs(&self, n_rows: usize, n_classes: usize) -> Result<()> {
        if self.len() != n_rows {
            return Err(invalid!("{} score rows for {n_rows} labels", self.len()));
        }
        for (i, row) in self.iter().enumerate() {
            if row.len() != n_classes {
                return Err(invalid!(
                    "score row {i} has {} values, expected {n_classes} (one per class)",
                    row.len()
                ));
            }
            if let Some(j) = row.iter().position(|v| !v.is_finite() || *v < 0.0) {
                return Err(invalid!(
                    "score row {i}, class {j}: {} is not a finite non-negative probability",
                    row[j]
                ));
            }
        }
        Ok(())
    }
}

impl<'a> From<&'a [Vec<f32>]> for ScoreRows<'a> {
    fn from(rows: &'a [Vec<f32>]) -> Self {
        Self {
            inner: Inner::Rows(rows),
        }
    }
}

impl<'a> From<&'a Vec<Vec<f32>>> for ScoreRows<'a> {
    fn from(rows: &'a Vec<Vec<f32>>) -> Self {
        Self::from(rows.as_slice())
    }
}

/// Index of the largest value; ties go to the lower index. `None` for an empty row.
pub fn argmax(row: &[f32]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, v) in row.iter().enumerate() {
        match best {
            Some(b) if row[b] >= *v => {}
            _ => best = Some(i),
        }
    }
    best
}

/// Rank of class `c` in `row` (0 = best) under the same tie rule as [`argmax`]: values
/// strictly larger, plus equal values at a lower index, come first.
pub(crate) fn rank_of(row: &[f32], c: usize) -> usize {
    let v = row[c];
    row.iter()
        .enumerate()
        .filter(|&(j, &x)| x > v || (x == v && j < c))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_and_rows_agree() {
        let rows = vec![vec![0.1, 0.9], vec![0.6, 0.4]];
        let flat = [0.1, 0.9, 0.6, 0.4];
        let a = ScoreRows::from(&rows);
        let b = ScoreRows::flat(&flat, 2).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(b.len(), 2);
        assert_eq!(a.row(1), b.row(1));
        assert!(ScoreRows::flat(&flat, 3).is_err());
        assert!(ScoreRows::flat(&flat, 0).is_err());
    }

    #[test]
    fn argmax_and_rank_break_ties_by_index() {
        assert_eq!(argmax(&[0.2, 0.5, 0.5]), Some(1));
        assert_eq!(argmax(&[]), None);
        assert_eq!(rank_of(&[0.2, 0.5, 0.5], 1), 0);
        assert_eq!(rank_of(&[0.2, 0.5, 0.5], 2), 1);
        assert_eq!(rank_of(&[0.2, 0.5, 0.5], 0), 2);
    }

    #[test]
    fn validation_reports_the_row() {
        let rows = vec![vec![0.5, 0.5], vec![0.5, f32::NAN]];
        let err = ScoreRows::from(&rows).validate_probs(2, 2).unwrap_err();
        assert!(err.to_string().contains("row 1"), "{err}");
        let rows = vec![vec![0.5, 0.5, 0.0]];
        assert!(ScoreRows::from(&rows).validate_probs(1, 2).is_err());
        assert!(ScoreRows::from(&rows).validate_probs(2, 3).is_err());
    }
}
