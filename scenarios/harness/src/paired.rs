//! Ratios measured the way a shared machine allows: in paired, interleaved
//! rounds (A B, B A, A B, ...), one ratio per round, and the median of the
//! per-round ratios with their spread. A neighbour's burst slows both sides
//! of the round it lands in, so it moves one round's ratio, not the median.

use serde::{Deserialize, Serialize};

/// The median of `values` (mean of the middle two for an even count); 0
/// when empty. NaNs sort last.
pub fn median(values: &[f64]) -> f64 {
    quantile(values, 0.5)
}

/// The `q` quantile (0 to 1) of `values`, interpolated between the two
/// nearest ranks; 0 when empty.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        1 => sorted[0],
        n => {
            let rank = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let low = rank.floor() as usize;
            let high = rank.ceil() as usize;
            sorted[low] + (sorted[high] - sorted[low]) * (rank - low as f64)
        }
    }
}

/// Which side a round measures first: A first in even rounds, B first in
/// odd ones (A B, B A, A B, ...), so that a drift over the run hits both.
pub fn a_first(round: usize) -> bool {
    round.is_multiple_of(2)
}

/// One round of a paired comparison: both sides' figure (higher is better,
/// e.g. bytes per second) and their ratio.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Round {
    /// The measured side (the engine, weir's server, ...).
    pub a: f64,
    /// The baseline it is compared with.
    pub b: f64,
    /// `a / b`.
    pub ratio: f64,
}

/// A ratio from paired rounds: the median of the per-round ratios, and how
/// far the rounds spread around it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PairedRatio {
    /// The median of the per-round ratios: the figure gates read.
    pub median: f64,
    /// The lower quartile of the per-round ratios.
    pub q1: f64,
    /// The upper quartile of the per-round ratios.
    pub q3: f64,
    /// The smallest per-round ratio.
    pub min: f64,
    /// The largest per-round ratio.
    pub max: f64,
    /// `(q3 - q1) / median`: the relative spread of the middle half.
    pub spread: f64,
    /// Every round, in the order measured.
    pub rounds: Vec<Round>,
}

impl PairedRatio {
    /// The ratio of `(a, b)` pairs, one per round; rounds where `b` is not
    /// positive are left out. `None` when no round is left.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (f64, f64)>) -> Option<Self> {
        let rounds: Vec<Round> = pairs
            .into_iter()
            .filter(|&(_, b)| b > 0.0)
            .map(|(a, b)| Round { a, b, ratio: a / b })
            .collect();
        if rounds.is_empty() {
            return None;
        }
        let ratios: Vec<f64> = rounds.iter().map(|r| r.ratio).collect();
        let median = median(&ratios);
        let (q1, q3) = (quantile(&ratios, 0.25), quantile(&ratios, 0.75));
        Some(Self {
            median,
            q1,
            q3,
            min: ratios.iter().copied().fold(f64::INFINITY, f64::min),
            max: ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            spread: if median > 0.0 { (q3 - q1) / median } else { 0.0 },
            rounds,
        })
    }

    /// The median of side A's figures.
    pub fn a_median(&self) -> f64 {
        median(&self.rounds.iter().map(|r| r.a).collect::<Vec<_>>())
    }

    /// The median of side B's figures.
    pub fn b_median(&self) -> f64 {
        median(&self.rounds.iter().map(|r| r.b).collect::<Vec<_>>())
    }
}

impl std::fmt::Display for PairedRatio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.3}x (median of {} rounds, quartiles {:.3}..{:.3}, range {:.3}..{:.3})",
            self.median,
            self.rounds.len(),
            self.q1,
            self.q3,
            self.min,
            self.max
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_quantiles_of_odd_even_and_empty() {
        assert!((median(&[3.0, 1.0, 2.0]) - 2.0).abs() < f64::EPSILON);
        assert!((median(&[4.0, 1.0, 2.0, 3.0]) - 2.5).abs() < f64::EPSILON);
        assert!(median(&[]).abs() < f64::EPSILON);
        assert!((quantile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.25) - 2.0).abs() < f64::EPSILON);
        assert!((quantile(&[7.0], 0.9) - 7.0).abs() < f64::EPSILON);
    }

    #[test]
    fn one_slow_round_moves_the_ratio_little() {
        // Four rounds at 1.0x and one where a neighbour slowed side A to
        // half: the median stays 1.0, the range shows the outlier.
        let pairs = [(10.0, 10.0), (10.0, 10.0), (5.0, 10.0), (10.0, 10.0), (10.0, 10.0)];
        let ratio = PairedRatio::from_pairs(pairs).unwrap();
        assert!((ratio.median - 1.0).abs() < f64::EPSILON);
        assert!((ratio.min - 0.5).abs() < f64::EPSILON);
        assert!(ratio.spread.abs() < f64::EPSILON);
        assert_eq!(ratio.rounds.len(), 5);
        assert!(ratio.to_string().starts_with("1.000x (median of 5 rounds"));
    }

    #[test]
    fn rounds_without_a_baseline_are_left_out() {
        assert_eq!(PairedRatio::from_pairs([(1.0, 0.0)]), None);
        let ratio = PairedRatio::from_pairs([(1.0, 0.0), (3.0, 2.0)]).unwrap();
        assert_eq!(ratio.rounds.len(), 1);
        assert!((ratio.median - 1.5).abs() < f64::EPSILON);
    }

    #[test]
    fn the_order_alternates() {
        assert!(a_first(0));
        assert!(!a_first(1));
        assert!(a_first(2));
    }
}
