use serde::{Deserialize, Serialize};

/// Learning rate: linear warm-up from `warmup_ratio * base` to `base`, then poly decay
/// `base * (1 - progress)^power` to zero at `total` iterations.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PolySchedule {
    pub base: f64,
    pub total: usize,
    pub warmup: usize,
    pub warmup_ratio: f64,
    pub power: f64,
}

impl PolySchedule {
    pub fn lr(&self, iteration: usize) -> f64 {
        if iteration < self.warmup {
            let t = iteration as f64 / self.warmup as f64;
            return self.base * (self.warmup_ratio + (1.0 - self.warmup_ratio) * t);
        }
        let span = self.total.saturating_sub(self.warmup).max(1) as f64;
        let progress = ((iteration - self.warmup) as f64 / span).min(1.0);
        self.base * (1.0 - progress).powf(self.power)
    }
}
