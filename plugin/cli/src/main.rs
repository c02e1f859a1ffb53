//! The `triage` command line: the filter's routing core, offline.

mod calibrate;
mod ecds;
mod envoy;
mod eval;
mod k8s;
mod report;
mod route;
mod schema;
mod train;
mod validate;

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
    /// Measure the router's quality and cost on routing-dataset rows, beside its baselines.
    Eval(eval::EvalArgs),
    /// Fit the router's model on routing-dataset rows, with k-fold cross-validation.
    Train(train::TrainArgs),
    /// Set the tier thresholds to meet a target and write the plugin config with the model.
    Calibrate(calibrate::CalibrateArgs),
    /// Per time window from decision logs: cost per task, savings, routing accuracy, override,
    /// escalation and fail-open rates, against the operators' targets.
    Report(report::ReportArgs),
    /// Check a plugin config as the filter's on_configure does, and print its tiers.
    Validate(validate::ValidateArgs),
    /// Print the Envoy config of a triage stack, with a route and a cluster per tier of the
    /// plugin config.
    Envoy(envoy::EnvoyArgs),
    /// Print one version of triage (plugin config and module by URL and sha256) for Envoy's
    /// extension config discovery, checked as the filter checks its config.
    Ecds(ecds::EcdsArgs),
    /// Print the Kubernetes manifests that deliver triage through Istio or Envoy Gateway, with a
    /// route and a backend per tier of the plugin config.
    K8s(k8s::K8sArgs),
    /// Print the plugin config's JSON Schema (what the filter's config check refuses beyond it is
    /// listed in its description).
    Schema(schema::SchemaArgs),
}

fn main() -> ExitCode {
    let outcome = match Cli::parse().command {
        Command::Route(args) => route::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Train(args) => train::run(args),
        Command::Calibrate(args) => calibrate::run(args),
        Command::Report(args) => report::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Envoy(args) => envoy::run(args),
        Command::Ecds(args) => ecds::run(args),
        Command::K8s(args) => k8s::run(args),
        Command::Schema(args) => schema::run(args),
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
