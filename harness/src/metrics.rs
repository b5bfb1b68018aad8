//! Agreement between binary masks: the Dice coefficient of the seed's Table 1.

use serde::Serialize;

/// Voxel counts of a predicted mask against a reference mask.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Overlap {
    /// Voxels set in both.
    pub both: u64,
    /// Voxels set in the prediction only.
    pub predicted_only: u64,
    /// Voxels set in the reference only.
    pub reference_only: u64,
    /// Voxels compared.
    pub voxels: u64,
}

impl Overlap {
    /// Counts `predicted` against `reference` (non-zero = set).
    ///
    /// # Panics
    /// If the masks differ in length.
    pub fn of(predicted: &[u8], reference: &[u8]) -> Self {
        assert_eq!(predicted.len(), reference.len(), "masks of different sizes");
        let mut o = Overlap {
            voxels: predicted.len() as u64,
            ..Overlap::default()
        };
        for (&p, &r) in predicted.iter().zip(reference) {
            match (p != 0, r != 0) {
                (true, true) => o.both += 1,
                (true, false) => o.predicted_only += 1,
                (false, true) => o.reference_only += 1,
                (false, false) => {}
            }
        }
        o
    }

    /// Adds another count (e.g. of another slice or volume).
    pub fn add(&mut self, other: &Overlap) {
        self.both += other.both;
        self.predicted_only += other.predicted_only;
        self.reference_only += other.reference_only;
        self.voxels += other.voxels;
    }

    /// `2 |P ∩ R| / (|P| + |R|)`; 1 when both masks are empty (they agree).
    pub fn dice(&self) -> f64 {
        let denom = 2 * self.both + self.predicted_only + self.reference_only;
        if denom == 0 {
            1.0
        } else {
            2.0 * self.both as f64 / denom as f64
        }
    }

    /// Voxels on which the masks differ.
    pub fn differing(&self) -> u64 {
        self.predicted_only + self.reference_only
    }
}

/// [`Overlap::dice`] of two masks.
///
/// # Panics
/// If the masks differ in length.
pub fn dice(predicted: &[u8], reference: &[u8]) -> f64 {
    Overlap::of(predicted, reference).dice()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values() {
        assert_eq!(dice(&[1, 1, 0, 0], &[1, 0, 1, 0]), 0.5);
        assert_eq!(dice(&[0, 0], &[0, 0]), 1.0);
        assert_eq!(dice(&[1, 0], &[0, 0]), 0.0);
        let o = Overlap::of(&[1, 1, 0, 1], &[1, 0, 1, 1]);
        assert_eq!((o.both, o.predicted_only, o.reference_only), (2, 1, 1));
        assert_eq!(o.differing(), 2);
    }

    proptest! {
        #[test]
        fn dice_is_symmetric_bounded_and_one_on_itself(
            a in proptest::collection::vec(0u8..2, 1..200), seed in any::<u64>()
        ) {
            let b: Vec<u8> = a.iter().enumerate()
                .map(|(i, &v)| v ^ u8::from((seed >> (i % 64)) & 1 == 1)).collect();
            let d = dice(&a, &b);
            prop_assert!((0.0..=1.0).contains(&d));
            prop_assert_eq!(d, dice(&b, &a));
            prop_assert_eq!(dice(&a, &a), 1.0);
            let mut sum = Overlap::of(&a[..a.len() / 2], &b[..a.len() / 2]);
            sum.add(&Overlap::of(&a[a.len() / 2..], &b[a.len() / 2..]));
            prop_assert_eq!(sum, Overlap::of(&a, &b));
        }
    }
}
