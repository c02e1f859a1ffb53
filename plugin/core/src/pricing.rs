//! What a request cost, from the usage a response reported and the tier's list price.

use crate::usage::Usage;

/// A tier's list price in US dollars per million tokens, which is also micro-dollars per token.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

impl Price {
    /// Cost in micro-dollars (1e-6 USD).
    pub fn cost_micro_usd(&self, usage: &Usage) -> f64 {
        usage.prompt_tokens as f64 * self.input_per_mtok
            + usage.completion_tokens as f64 * self.output_per_mtok
    }
}

/// Envoy counters hold integers: each request's cost is rounded to the nearest micro-dollar before
/// it is added, so a counter is the sum of its requests' rounded costs (at most 0.5 µ$ off each).
pub fn counter_micro_usd(cost: f64) -> u64 {
    if cost.is_finite() && cost > 0.0 {
        cost.round() as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_is_tokens_times_price_per_million() {
        let price = Price {
            input_per_mtok: 2.5,
            output_per_mtok: 10.0,
        };
        let usage = Usage {
            prompt_tokens: 1_000,
            completion_tokens: 200,
        };
        // 1000 * $2.50/1M + 200 * $10/1M = $0.0045 = 4500 µ$
        assert_eq!(price.cost_micro_usd(&usage), 4_500.0);
        assert_eq!(counter_micro_usd(1.5), 2);
        assert_eq!(counter_micro_usd(0.49), 0);
        assert_eq!(counter_micro_usd(f64::NAN), 0);
        assert_eq!(counter_micro_usd(-3.0), 0);
    }
}
