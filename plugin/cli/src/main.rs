//! The `triage` command line: the filter's routing core, offline.

mod route;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "triage",
    version,
    about = "Route LLM requests by complexity, offline, with the filter's core"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Decide a tier for each request body or dataset row (JSON lines).
    Route(route::RouteArgs),
}

fn main() -> ExitCode {
    let outcome = match Cli::parse().command {
        Command::Route(args) => route::run(args),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("triage: {error}");
            ExitCode::FAILURE
        }
    }
}
