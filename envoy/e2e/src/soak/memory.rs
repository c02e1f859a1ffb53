//! Envoy's memory over the soak: its resident set from `/proc` and the filter's
//! `triage_vm_memory_bytes` gauge (the largest wasm VM's linear memory), sampled every few seconds,
//! and whether each stayed flat once warm.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::stack::Stack;

/// How often memory is sampled: the filter's VMs report every 5 s.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Since the soak started.
    pub at: Duration,
    pub rss_bytes: Option<u64>,
    pub vm_bytes: Option<u64>,
}

/// Samples until `stop` is set.
pub fn sample_until(stack: &Stack, start: Instant, stop: &AtomicBool) -> Vec<Sample> {
    let mut samples = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        samples.push(Sample {
            at: start.elapsed(),
            rss_bytes: rss_bytes(stack.envoy_pid()),
            vm_bytes: vm_bytes(stack),
        });
        // Sleep in small steps so the sampler stops soon after the clients.
        let next = Instant::now() + SAMPLE_EVERY;
        while Instant::now() < next && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    samples
}

/// A memory series the soak judges.
#[derive(Clone, Copy, Debug)]
pub enum Series {
    EnvoyRss,
    LargestVm,
}

impl Series {
    pub const ALL: [Series; 2] = [Series::EnvoyRss, Series::LargestVm];

    pub fn name(&self) -> &'static str {
        match self {
            Series::EnvoyRss => "Envoy RSS (/proc VmRSS)",
            Series::LargestVm => "largest wasm VM (triage_vm_memory_bytes)",
        }
    }

    pub fn of(&self, sample: &Sample) -> Option<u64> {
        match self {
            Series::EnvoyRss => sample.rss_bytes,
            Series::LargestVm => sample.vm_bytes,
        }
    }

    /// How much the last half's peak may exceed the first quarter's after warm-up, as a share.
    ///
    /// Envoy's resident memory moves with what is in flight: a 1 MiB body is held several times
    /// over (Envoy's buffer, the filter's copy, the rewrite) and the allocator keeps freed pages, so
    /// its peak moves by some MiB when large bodies coincide; 10 % of Envoy's ~180 MiB is 18 MiB,
    /// which a leak of 100 bytes per request crosses within the ~200,000 requests of a 10-minute
    /// soak. A VM's linear memory never shrinks and grows only when the VM needs more than it ever
    /// had (more large bodies at once on its worker than before); 10 % of its ~12 MiB is about one
    /// more 1 MiB body held twice, and a leak of 10 bytes per request crosses it.
    pub fn growth_bound(&self) -> f64 {
        match self {
            Series::EnvoyRss | Series::LargestVm => 0.10,
        }
    }
}

/// `VmRSS` of a process, from `/proc/<pid>/status`.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn vm_bytes(stack: &Stack) -> Option<u64> {
    let scrape = stack.prometheus();
    let series = scrape.matching("triage_vm_memory_bytes", &[]).next()?;
    Some(series.value as u64)
}

/// Each sample that set a new peak of the series, with its time: when a memory that never
/// shrinks grew, so a late step shows when it came.
pub fn new_peaks(samples: &[Sample], series: Series) -> Vec<(Duration, u64)> {
    let mut peak = 0;
    samples
        .iter()
        .filter_map(|sample| Some((sample.at, series.of(sample)?)))
        .filter(|(_, value)| {
            let higher = *value > peak;
            peak = peak.max(*value);
            higher
        })
        .collect()
}

/// A memory series' shape after warm-up: the windows the flatness check compares.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Flatness {
    /// The first sample, taken as the stack started taking traffic.
    pub at_start: u64,
    /// The largest value during warm-up.
    pub warm_up_max: u64,
    /// The largest value in the first quarter after warm-up.
    pub first_quarter_max: u64,
    /// The largest value in the last half.
    pub last_half_max: u64,
    pub at_end: u64,
}

impl Flatness {
    /// Of the samples `value` picks (those without a value are skipped), with warm-up the first
    /// `warm_up` of the run; None when a window has no sample.
    pub fn of(
        samples: &[Sample],
        value: impl Fn(&Sample) -> Option<u64>,
        warm_up: Duration,
    ) -> Option<Flatness> {
        let points: Vec<(Duration, u64)> = samples
            .iter()
            .filter_map(|sample| Some((sample.at, value(sample)?)))
            .collect();
        let end = points.last()?.0;
        let measured = end.checked_sub(warm_up)?;
        let max_in = |from: Duration, to: Duration| {
            points
                .iter()
                .filter(|(at, _)| (from..=to).contains(at))
                .map(|(_, value)| *value)
                .max()
        };
        Some(Flatness {
            at_start: points.first()?.1,
            warm_up_max: max_in(Duration::ZERO, warm_up)?,
            first_quarter_max: max_in(warm_up, warm_up + measured / 4)?,
            last_half_max: max_in(end - measured / 2, end)?,
            at_end: points.last()?.1,
        })
    }

    /// How much the last half's peak exceeds the first quarter's, as a share of the latter.
    pub fn growth(&self) -> f64 {
        (self.last_half_max as f64 - self.first_quarter_max as f64)
            / self.first_quarter_max.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(values: &[u64]) -> Vec<Sample> {
        values
            .iter()
            .enumerate()
            .map(|(i, &value)| Sample {
                at: Duration::from_secs(i as u64),
                rss_bytes: Some(value),
                vm_bytes: None,
            })
            .collect()
    }

    #[test]
    fn windows_split_the_run_after_warm_up() {
        // Warm-up 0..=2 s; measured 2..=10 s: first quarter 2..=4 s, last half 6..=10 s.
        let run = samples(&[10, 50, 60, 70, 80, 75, 90, 85, 80, 80, 100]);
        let flat = Flatness::of(&run, |s| s.rss_bytes, Duration::from_secs(2)).unwrap();
        assert_eq!(flat.at_start, 10);
        assert_eq!(flat.warm_up_max, 60);
        assert_eq!(flat.first_quarter_max, 80);
        assert_eq!(flat.last_half_max, 100);
        assert_eq!(flat.at_end, 100);
        assert!((flat.growth() - 0.25).abs() < 1e-9);
        assert_eq!(
            Flatness::of(&run, |s| s.vm_bytes, Duration::from_secs(2)),
            None
        );
    }
}
