//! What the soak prints: a progress line every 30 s, then the figures and the verdict of every check.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::thread::ScopedJoinHandle;
use std::time::Duration;

use super::checks::{self, Identity, Ledger};
use super::client::{Sent, Traffic};
use super::memory::{new_peaks, rss_bytes, Flatness, Series};
use super::mix::{size_class, Caller, SIZE_CLASSES};
use super::records::{self, describe};
use super::Findings;

const PROGRESS_EVERY: Duration = Duration::from_secs(30);
/// Failures listed one by one, at most, per check.
const LISTED: usize = 20;

/// Prints a progress line every 30 s until every client has finished.
pub fn progress_until_done(traffic: &Traffic, clients: &[ScopedJoinHandle<'_, Vec<Sent>>]) {
    let mut next = PROGRESS_EVERY;
    while !clients.iter().all(|client| client.is_finished()) {
        std::thread::sleep(Duration::from_millis(200));
        let elapsed = traffic.start.elapsed();
        if elapsed < next {
            continue;
        }
        next += PROGRESS_EVERY;
        let requests = traffic.progress.requests.load(Ordering::Relaxed);
        let phase = traffic
            .flap
            .failure_at(elapsed)
            .map_or_else(|| "calm".to_owned(), |failure| failure.switch());
        let rss = rss_bytes(traffic.stack.envoy_pid()).map_or_else(|| "?".to_owned(), mib);
        eprintln!(
            "soak: {:>4} s  {requests:>7} requests ({:.0}/s)  {} errors  phase {phase}  Envoy RSS {rss}",
            elapsed.as_secs(),
            requests as f64 / elapsed.as_secs_f64(),
            traffic.progress.errors.load(Ordering::Relaxed),
        );
    }
}

/// The report and every failed check.
pub struct Verdict {
    pub report: String,
    pub failures: Vec<String>,
}

/// Judges the findings: the figures go in the report, each failed check in `failures`.
pub fn verdict(findings: &Findings) -> Verdict {
    let mut out = String::new();
    let mut failures = Vec::new();
    traffic(&mut out, findings);

    let records = match &findings.records {
        Ok(records) => records.as_slice(),
        Err(problem) => {
            failures.push(problem.clone());
            &[]
        }
    };
    let join = records::join(&findings.sent, records);

    let errors = checks::errors(&findings.sent, &join);
    let mut explained: BTreeMap<String, usize> = BTreeMap::new();
    let mut unexplained = Vec::new();
    for (request, explanation) in &errors {
        match explanation {
            Ok(why) => {
                let switch = request.failure.map(|f| f.switch()).unwrap_or_default();
                let key = format!("{switch} -> {}: {why}", request.outcome.kind());
                *explained.entry(key).or_default() += 1;
            }
            Err(why) => unexplained.push(format!(
                "{}: {} ({why})",
                describe(request),
                request.outcome.detail()
            )),
        }
    }
    let _ = writeln!(
        out,
        "client-visible errors: {} ({} explained by the failing tier, {} not)",
        errors.len(),
        errors.len() - unexplained.len(),
        unexplained.len()
    );
    for (what, count) in &explained {
        let _ = writeln!(out, "  {count:>6}  {what}");
    }
    fail_each(
        &mut failures,
        "an error the upstream did not cause",
        unexplained,
    );
    let escalations = checks::unexplained_escalations(&findings.sent, &join);
    fail_each(
        &mut failures,
        "an escalation no failure asked for",
        escalations,
    );
    escalation_tally(&mut out, records);

    let _ = writeln!(
        out,
        "decision records: {} ({:.0} MB of access log) for {} routed requests ({} pass-through \
         calls, none recorded); {} joined to their request with the decision id its response carried",
        records.len(),
        findings.log_bytes as f64 / 1e6,
        findings.sent.iter().filter(|r| r.shape.route.cause().is_some()).count(),
        findings.sent.iter().filter(|r| r.shape.route.cause().is_none()).count(),
        findings
            .sent
            .iter()
            .filter(|r| r.decision_id.is_some() && join.by_request.contains_key(r.request_id.as_str()))
            .count()
    );
    let past_the_filter = findings
        .sent
        .iter()
        .filter(|request| records::answered_past_the_filter(request))
        .count();
    if past_the_filter > 0 {
        let _ = writeln!(
            out,
            "  {past_the_filter} of them Envoy's own 502 for a held answer the tier broke: no decision \
             id on the response, the tier's 200 in the record (a filter gap; joined by request id)"
        );
    }
    fail_each(&mut failures, "decision records", join.failures);

    memory(&mut out, &mut failures, findings);

    let ledger = Ledger {
        sent: &findings.sent,
        records,
        scrape: &findings.scrape,
        config: &findings.config,
        upstream: &findings.upstream,
    };
    let _ = writeln!(out, "counters (Envoy's /stats/prometheus at the end):");
    for identity in ledger.identities() {
        let _ = writeln!(
            out,
            "  {} {}: {} = {}",
            if identity.holds() { "ok  " } else { "FAIL" },
            identity.what,
            identity.counted,
            identity.expected
        );
        if !identity.holds() {
            failures.push(counter_failure(&identity));
        }
    }
    fail_each(&mut failures, "the wasm VM", findings.vm_failures.clone());
    Verdict {
        report: out,
        failures,
    }
}

fn counter_failure(identity: &Identity) -> String {
    format!(
        "counters: {}: counted {}, expected {}",
        identity.what, identity.counted, identity.expected
    )
}

/// Adds each problem of a check as a failure, the first few by name.
fn fail_each(failures: &mut Vec<String>, check: &str, problems: Vec<String>) {
    let total = problems.len();
    for problem in problems.into_iter().take(LISTED) {
        failures.push(format!("{check}: {problem}"));
    }
    if total > LISTED {
        failures.push(format!("{check}: ... and {} more", total - LISTED));
    }
}

fn traffic(out: &mut String, findings: &Findings) {
    let sent = &findings.sent;
    let seconds = findings.elapsed.as_secs_f64();
    let _ = writeln!(
        out,
        "soak: {} requests in {:.0} s ({:.0}/s) on {} connections to the shipped stack, 2 Envoy workers",
        sent.len(),
        seconds,
        sent.len() as f64 / seconds,
        findings.options.connections
    );
    let _ = writeln!(
        out,
        "flap: {}",
        findings.options.flap().describe(findings.options.duration)
    );
    let mut by_api: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut by_size: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_route: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_switch: BTreeMap<String, usize> = BTreeMap::new();
    let mut bytes = 0usize;
    for request in sent {
        let mode = if request.shape.stream {
            "stream"
        } else {
            "JSON"
        };
        *by_api
            .entry((request.shape.format.as_str(), mode))
            .or_default() += 1;
        *by_size.entry(size_class(request.shape.size)).or_default() += 1;
        *by_route.entry(request.shape.route.name()).or_default() += 1;
        if let Some(failure) = request.failure {
            *by_switch.entry(failure.switch()).or_default() += 1;
        }
        bytes += request.shape.size;
    }
    let api: Vec<String> = by_api
        .iter()
        .map(|((api, mode), n)| format!("{api} {mode} {n}"))
        .collect();
    let _ = writeln!(out, "  by API:    {}", api.join(", "));
    let sizes: Vec<String> = SIZE_CLASSES
        .iter()
        .map(|(class, _)| format!("{class} {}", by_size.get(class).copied().unwrap_or(0)))
        .collect();
    let _ = writeln!(
        out,
        "  by size:   {} ({:.1} GB of request bodies)",
        sizes.join(", "),
        bytes as f64 / 1e9
    );
    let routes: Vec<String> = by_route
        .iter()
        .map(|(route, n)| format!("{route} {n}"))
        .collect();
    let _ = writeln!(out, "  by route:  {}", routes.join(", "));
    let verified = sent
        .iter()
        .filter(|r| r.shape.caller != Caller::Anonymous)
        .count();
    let _ = writeln!(
        out,
        "  callers:   {} anonymous, {verified} with a verified token",
        sent.len() - verified
    );
    let switches: Vec<String> = by_switch.iter().map(|(s, n)| format!("{s} {n}")).collect();
    let _ = writeln!(out, "  carrying a failure switch: {}", switches.join(", "));
    let mut latencies: Vec<Duration> = sent.iter().map(|r| r.latency).collect();
    latencies.sort_unstable();
    let at = |share: f64| {
        let index =
            ((latencies.len() as f64 * share) as usize).min(latencies.len().saturating_sub(1));
        latencies
            .get(index)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let _ = writeln!(
        out,
        "  latency:   p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        at(0.5),
        at(0.99),
        at(1.0)
    );
}

fn escalation_tally(out: &mut String, records: &[triage_core::DecisionRecord]) {
    let mut by_cause: BTreeMap<String, usize> = BTreeMap::new();
    for step in records.iter().flat_map(|record| &record.escalations) {
        *by_cause
            .entry(format!("{}->{} {}", step.from, step.to, step.cause))
            .or_default() += 1;
    }
    let tally: Vec<String> = by_cause
        .iter()
        .map(|(what, n)| format!("{what} {n}"))
        .collect();
    let _ = writeln!(out, "escalations: {}", tally.join(", "));
}

fn memory(out: &mut String, failures: &mut Vec<String>, findings: &Findings) {
    let warm_up = findings.options.warm_up();
    let _ = writeln!(
        out,
        "memory, sampled every {} s ({} samples); warm-up the first {} s; growth = the last half's \
         peak over the first quarter's after warm-up:",
        super::memory::SAMPLE_EVERY.as_secs(),
        findings.samples.len(),
        warm_up.as_secs(),
    );
    for series in Series::ALL {
        let (name, bound) = (series.name(), series.growth_bound());
        let Some(flat) = Flatness::of(&findings.samples, |sample| series.of(sample), warm_up)
        else {
            failures.push(format!("memory: no samples of {name} in every window"));
            continue;
        };
        let _ = writeln!(
            out,
            "  {name}: start {}, warm-up peak {}, first-quarter peak {}, last-half peak {}, end {}: \
             growth {:+.1} % (bound {:.0} %)",
            mib(flat.at_start),
            mib(flat.warm_up_max),
            mib(flat.first_quarter_max),
            mib(flat.last_half_max),
            mib(flat.at_end),
            flat.growth() * 100.0,
            bound * 100.0
        );
        if let Series::LargestVm = series {
            let peaks: Vec<String> = new_peaks(&findings.samples, series)
                .into_iter()
                .map(|(at, bytes)| format!("{} s {}", at.as_secs(), mib(bytes)))
                .collect();
            let _ = writeln!(out, "    new peaks: {}", peaks.join(", "));
        }
        if flat.growth() > bound {
            failures.push(format!(
                "memory: {name} grew {:+.1} % after warm-up (bound {:.0} %): {} -> {}",
                flat.growth() * 100.0,
                bound * 100.0,
                mib(flat.first_quarter_max),
                mib(flat.last_half_max)
            ));
        }
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1_048_576.0)
}
