//! The channel width multiplier both networks scale their layers with.

/// A channel width multiplier: scales every layer's channel count, rounding to the nearest
/// integer and keeping at least one channel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Width(pub f64);

impl Width {
    /// `channels` of the full-width network, scaled.
    pub fn of(self, channels: usize) -> usize {
        ((channels as f64 * self.0).round() as usize).max(1)
    }
}
