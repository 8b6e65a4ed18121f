//! Metrics of the controller's quality, computed each NAO round (spec section 10).

/// Fraction of pairs `i < j` whose order agrees between `labels` and `preds`.
///
/// Each pair is oriented so that `labels[i] >= labels[j]` (a label tie keeps the original
/// order) and counts as agreeing when `preds[i] >= preds[j]`. `None` with fewer than two
/// items.
///
/// ```
/// use nao::search::diagnostics::pairwise_accuracy;
/// assert_eq!(pairwise_accuracy(&[1.0, 2.0, 3.0], &[0.1, 0.2, 0.3]), Some(1.0));
/// assert_eq!(pairwise_accuracy(&[1.0, 2.0, 3.0], &[0.3, 0.2, 0.1]), Some(0.0));
/// ```
///
/// # Panics
/// If the slices differ in length.
pub fn pairwise_accuracy(labels: &[f64], preds: &[f64]) -> Option<f64> {
    assert_eq!(
        labels.len(),
        preds.len(),
        "labels and predictions differ in length"
    );
    let n = labels.len();
    if n < 2 {
        return None;
    }
    let mut agree = 0usize;
    for i in 0..n {
        for j in i + 1..n {
            let (hi, lo) = if labels[i] >= labels[j] {
                (i, j)
            } else {
                (j, i)
            };
            if preds[hi] >= preds[lo] {
                agree += 1;
            }
        }
    }
    Some(agree as f64 / (n * (n - 1) / 2) as f64)
}

/// Kendall's tau-b between `labels` and `preds` (ties in either count as neither concordant
/// nor discordant, and shrink the denominator). `None` with fewer than two items or when
/// either side is constant.
///
/// ```
/// use nao::search::diagnostics::kendall_tau;
/// assert_eq!(kendall_tau(&[1.0, 2.0, 3.0], &[0.1, 0.2, 0.3]), Some(1.0));
/// assert_eq!(kendall_tau(&[1.0, 2.0, 3.0], &[0.3, 0.2, 0.1]), Some(-1.0));
/// ```
///
/// # Panics
/// If the slices differ in length.
pub fn kendall_tau(labels: &[f64], preds: &[f64]) -> Option<f64> {
    assert_eq!(
        labels.len(),
        preds.len(),
        "labels and predictions differ in length"
    );
    let n = labels.len();
    let (mut conc, mut disc, mut tie_l, mut tie_p) = (0i64, 0i64, 0i64, 0i64);
    for i in 0..n {
        for j in i + 1..n {
            let a = labels[i] - labels[j];
            let b = preds[i] - preds[j];
            if a == 0.0 && b == 0.0 {
                continue;
            }
            if a == 0.0 {
                tie_l += 1;
            } else if b == 0.0 {
                tie_p += 1;
            } else if (a > 0.0) == (b > 0.0) {
                conc += 1;
            } else {
                disc += 1;
            }
        }
    }
    let n1 = (conc + disc + tie_l) as f64;
    let n2 = (conc + disc + tie_p) as f64;
    (n1 > 0.0 && n2 > 0.0).then(|| (conc - disc) as f64 / (n1 * n2).sqrt())
}

/// Number of positions where two token sequences differ (plus the length difference).
pub fn hamming(a: &[usize], b: &[usize]) -> usize {
    a.iter().zip(b).filter(|(x, y)| x != y).count() + a.len().abs_diff(b.len())
}

/// Reconstruction quality: `(exact-match rate, mean Hamming distance)` of `outputs` against
/// `inputs`; `None` when empty.
///
/// # Panics
/// If the slices differ in length.
pub fn reconstruction(inputs: &[Vec<usize>], outputs: &[Vec<usize>]) -> Option<(f64, f64)> {
    assert_eq!(
        inputs.len(),
        outputs.len(),
        "inputs and outputs differ in length"
    );
    if inputs.is_empty() {
        return None;
    }
    let n = inputs.len() as f64;
    let exact = inputs.iter().zip(outputs).filter(|(a, b)| a == b).count() as f64 / n;
    let ham = inputs
        .iter()
        .zip(outputs)
        .map(|(a, b)| hamming(a, b))
        .sum::<usize>() as f64
        / n;
    Some((exact, ham))
}

/// Mean of a slice; `None` when empty.
pub fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// Sample standard deviation (n - 1); `None` with fewer than two values.
pub fn std_dev(xs: &[f64]) -> Option<f64> {
    let m = mean(xs)?;
    (xs.len() >= 2)
        .then(|| (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_counts_half_for_one_swap() {
        // pairs: (0,1) agree, (0,2) agree, (1,2) disagree
        let acc = pairwise_accuracy(&[1.0, 2.0, 3.0], &[0.0, 2.0, 1.0]).unwrap();
        assert!((acc - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(pairwise_accuracy(&[1.0], &[1.0]), None);
    }

    #[test]
    fn pairwise_ties() {
        // label tie: agree when pred_i >= pred_j
        assert_eq!(pairwise_accuracy(&[1.0, 1.0], &[0.5, 0.2]), Some(1.0));
        assert_eq!(pairwise_accuracy(&[1.0, 1.0], &[0.2, 0.5]), Some(0.0));
        assert_eq!(pairwise_accuracy(&[1.0, 1.0], &[0.2, 0.2]), Some(1.0));
        // prediction tie on distinct labels agrees (>=)
        assert_eq!(pairwise_accuracy(&[2.0, 1.0], &[0.3, 0.3]), Some(1.0));
    }

    #[test]
    fn kendall_tau_values() {
        // 3 concordant, 0 discordant of 3 pairs
        assert_eq!(kendall_tau(&[1.0, 2.0, 3.0], &[1.0, 5.0, 9.0]), Some(1.0));
        // one swap of three: (2 - 1) / 3
        let t = kendall_tau(&[1.0, 2.0, 3.0], &[0.0, 2.0, 1.0]).unwrap();
        assert!((t - 1.0 / 3.0).abs() < 1e-12);
        // a prediction tie: conc 2 (pairs (0,1),(0,2)), tie_p 1 -> 2 / sqrt(3 * 2)
        let t = kendall_tau(&[1.0, 2.0, 3.0], &[0.0, 1.0, 1.0]).unwrap();
        assert!((t - 2.0 / 6f64.sqrt()).abs() < 1e-12);
        assert_eq!(kendall_tau(&[1.0, 1.0], &[0.0, 1.0]), None);
        assert_eq!(kendall_tau(&[1.0], &[1.0]), None);
    }

    #[test]
    fn reconstruction_and_hamming() {
        assert_eq!(hamming(&[1, 2, 3], &[1, 0, 0]), 2);
        assert_eq!(hamming(&[1, 2], &[1, 2, 3]), 1);
        let (exact, ham) =
            reconstruction(&[vec![1, 2], vec![3, 4]], &[vec![1, 2], vec![3, 5]]).unwrap();
        assert_eq!((exact, ham), (0.5, 0.5));
        assert_eq!(reconstruction(&[], &[]), None);
    }

    #[test]
    fn mean_and_std() {
        assert_eq!(mean(&[1.0, 3.0]), Some(2.0));
        assert_eq!(mean(&[]), None);
        assert!((std_dev(&[1.0, 3.0]).unwrap() - 2f64.sqrt()).abs() < 1e-12);
    }
}
