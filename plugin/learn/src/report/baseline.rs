//! The baseline beside the router's accuracy: what routing by prompt length would have scored on the
//! same graded requests. The shortest prompts go to the cheapest tier, in the router's own tier
//! shares over those requests, so both spend the same mix of tiers and only the choice of which
//! request goes where differs (the prompt-length router of `triage eval`, on live traffic). Prompt
//! length is the record's `usage.prompt_tokens`; requests without usage are left out of both.
//! Requests of equal length split their tiers evenly (ties averaged), so the order of the log
//! changes nothing.

use serde::Serialize;

/// One graded, automatically routed request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Graded {
    pub prompt_tokens: u64,
    /// Triage's own tier (before any override), as an index into the report's tiers.
    pub chosen: usize,
    /// The feedback's correct tier, likewise.
    pub correct: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LengthBaseline {
    /// Graded requests with a known prompt length: the base of both accuracies.
    pub requests: usize,
    pub router_accuracy: f64,
    /// Expected accuracy of routing by prompt length at the router's tier shares.
    pub length_accuracy: f64,
}

/// None without graded requests.
pub fn length_baseline(graded: &[Graded], tiers: usize) -> Option<LengthBaseline> {
    if graded.is_empty() {
        return None;
    }
    let n = graded.len();
    // Positions [bounds[t], bounds[t + 1]) of the length order go to tier t.
    let mut bounds = vec![0usize; tiers + 1];
    for request in graded {
        if let Some(count) = bounds.get_mut(request.chosen + 1) {
            *count += 1;
        }
    }
    for tier in 0..tiers {
        bounds[tier + 1] += bounds[tier];
    }
    let mut order: Vec<&Graded> = graded.iter().collect();
    order.sort_by_key(|request| request.prompt_tokens);
    let mut length_correct = 0.0;
    let mut start = 0;
    while start < n {
        let tokens = order[start].prompt_tokens;
        let end = start
            + order[start..]
                .iter()
                .take_while(|request| request.prompt_tokens == tokens)
                .count();
        // Each request of this tie group gets each tier with the share of the group's positions
        // that tier holds.
        for request in &order[start..end] {
            let (low, high) = (bounds[request.correct], bounds[request.correct + 1]);
            let overlap = high.min(end).saturating_sub(low.max(start));
            length_correct += overlap as f64 / (end - start) as f64;
        }
        start = end;
    }
    let router_correct = graded.iter().filter(|r| r.chosen == r.correct).count();
    Some(LengthBaseline {
        requests: n,
        router_accuracy: router_correct as f64 / n as f64,
        length_accuracy: length_correct / n as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graded(prompt_tokens: u64, chosen: usize, correct: usize) -> Graded {
        Graded {
            prompt_tokens,
            chosen,
            correct,
        }
    }

    #[test]
    fn when_length_orders_the_tiers_the_baseline_is_perfect() {
        // The router got two of four right; by length, the short ones are small and the long ones
        // frontier, which is what the feedback says.
        let requests = [
            graded(10, 2, 0),
            graded(20, 0, 0),
            graded(300, 0, 2),
            graded(400, 2, 2),
        ];
        let baseline = length_baseline(&requests, 3).unwrap();
        assert_eq!(baseline.requests, 4);
        assert_eq!(baseline.router_accuracy, 0.5);
        assert_eq!(baseline.length_accuracy, 1.0);
    }

    #[test]
    fn the_router_s_shares_are_kept() {
        // The router sent everything to mid; by length everything goes to mid too.
        let requests = [graded(10, 1, 0), graded(20, 1, 1), graded(30, 1, 2)];
        let baseline = length_baseline(&requests, 3).unwrap();
        assert_eq!(baseline.length_accuracy, 1.0 / 3.0);
        assert_eq!(baseline.router_accuracy, 1.0 / 3.0);
    }

    #[test]
    fn equal_lengths_split_their_tiers_evenly_whatever_the_order() {
        // Two of the same length, one small and one frontier slot between them: each is right
        // half the time.
        let requests = [graded(50, 0, 0), graded(50, 2, 2)];
        let baseline = length_baseline(&requests, 3).unwrap();
        assert_eq!(baseline.length_accuracy, 0.5);
        let swapped = [requests[1], requests[0]];
        assert_eq!(length_baseline(&swapped, 3).unwrap(), baseline);
    }

    #[test]
    fn nothing_graded_no_baseline() {
        assert_eq!(length_baseline(&[], 3), None);
    }
}
