//! The official optimizer (`train.py:181-195`): AdamW, lr 1e-4, betas (0.9, 0.999), weight
//! decay 0.01 on every parameter (norms and biases included), eps 1e-8, set explicitly because
//! burn's defaults differ (eps 1e-5, weight decay 1e-4). No schedule, warm-up or clipping.

use burn::optim::AdamWConfig;

/// Learning rate of both official parameter groups.
pub const LEARNING_RATE: f64 = 1e-4;

/// The official AdamW settings.
pub fn adamw() -> AdamWConfig {
    AdamWConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.999)
        .with_epsilon(1e-8)
        .with_weight_decay(1e-2)
}
