//! `soak [--minutes M | --seconds S] [--connections N] [--seed S]`: the soak of `triage_e2e::soak`
//! against the shipped stack; prints its figures, then each failed check, and exits 1 if any.

use std::process::ExitCode;
use std::time::Duration;

use triage_e2e::soak::{self, report, SoakOptions};

const USAGE: &str = "usage: soak [--minutes M | --seconds S] [--connections N] [--seed S]";

fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(problem) => {
            eprintln!("soak: {problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    eprintln!(
        "soak: {} s, {} connections, seed {}",
        options.duration.as_secs(),
        options.connections,
        options.seed
    );
    let findings = soak::run(options);
    let verdict = report::verdict(&findings);
    print!("{}", verdict.report);
    if verdict.failures.is_empty() {
        println!("soak: every check passed");
        return ExitCode::SUCCESS;
    }
    println!("soak: {} checks failed:", verdict.failures.len());
    for failure in &verdict.failures {
        println!("  {failure}");
    }
    ExitCode::FAILURE
}

fn parse(args: impl Iterator<Item = String>) -> Result<SoakOptions, String> {
    let mut options = SoakOptions::new(Duration::from_secs(600));
    let mut args = args.peekable();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number: f64 = value
            .parse()
            .map_err(|_| format!("{flag} {value:?} is not a number"))?;
        if !(number.is_finite() && number > 0.0) {
            return Err(format!("{flag} must be positive"));
        }
        match flag.as_str() {
            "--minutes" => options.duration = Duration::from_secs_f64(number * 60.0),
            "--seconds" => options.duration = Duration::from_secs_f64(number),
            "--connections" => options.connections = number as usize,
            "--seed" => options.seed = number as u64,
            _ => return Err(format!("unknown argument {flag:?}")),
        }
    }
    Ok(options)
}
