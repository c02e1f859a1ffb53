//! `mock-llm --tier small=127.0.0.1:18001 --tier mid=127.0.0.1:18002 ...`: one mock LLM server per
//! tier, each logging a line per request to stderr, until the process is killed.

use std::process::ExitCode;

use mock_llm::MockServer;

const USAGE: &str = "usage: mock-llm --tier NAME=ADDR [--tier NAME=ADDR ...]\n\
                     example: mock-llm --tier small=127.0.0.1:18001 --tier mid=127.0.0.1:18002";

#[derive(Debug, PartialEq)]
enum Command {
    Run(Vec<TierArg>),
    Help,
}

#[derive(Debug, PartialEq)]
struct TierArg {
    name: String,
    addr: String,
}

fn main() -> ExitCode {
    let tiers = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Run(tiers)) => tiers,
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("mock-llm: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut servers = Vec::with_capacity(tiers.len());
    for TierArg { name, addr } in &tiers {
        match MockServer::start_logged(name, addr) {
            Ok(server) => {
                eprintln!(
                    "mock-llm: tier {name} listening on http://{}",
                    server.addr()
                );
                servers.push(server);
            }
            Err(error) => {
                eprintln!("mock-llm: tier {name}: cannot listen on {addr}: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    // The servers run on their own threads; SIGTERM or SIGINT ends the process.
    loop {
        std::thread::park();
    }
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut args = args.into_iter();
    let mut tiers: Vec<TierArg> = Vec::new();
    while let Some(arg) = args.next() {
        let spec = match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--tier" => args
                .next()
                .ok_or("--tier needs a value like small=127.0.0.1:18001")?,
            _ => match arg.strip_prefix("--tier=") {
                Some(spec) => spec.to_owned(),
                None => return Err(format!("unknown argument {arg:?}")),
            },
        };
        let tier = parse_tier(&spec)?;
        if tiers.iter().any(|seen| seen.name == tier.name) {
            return Err(format!("tier {:?} is given twice", tier.name));
        }
        tiers.push(tier);
    }
    if tiers.is_empty() {
        return Err("no tier given".to_owned());
    }
    Ok(Command::Run(tiers))
}

fn parse_tier(spec: &str) -> Result<TierArg, String> {
    match spec.split_once('=') {
        Some((name, addr)) if !name.is_empty() && !addr.is_empty() => Ok(TierArg {
            name: name.to_owned(),
            addr: addr.to_owned(),
        }),
        _ => Err(format!(
            "--tier {spec:?}: expected NAME=ADDR like small=127.0.0.1:18001"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        parse_args(args.iter().map(|arg| arg.to_string()))
    }

    fn tier(name: &str, addr: &str) -> TierArg {
        TierArg {
            name: name.to_owned(),
            addr: addr.to_owned(),
        }
    }

    #[test]
    fn parses_tiers_in_both_spellings_in_order() {
        let parsed = parse(&["--tier", "small=127.0.0.1:1", "--tier=mid=127.0.0.1:2"]);
        assert_eq!(
            parsed,
            Ok(Command::Run(vec![
                tier("small", "127.0.0.1:1"),
                tier("mid", "127.0.0.1:2")
            ]))
        );
        assert_eq!(parse(&["--tier", "a=b", "--help"]), Ok(Command::Help));
    }

    #[test]
    fn refuses_bad_arguments_with_a_message_that_names_them() {
        let cases = [
            (vec![], "no tier given"),
            (vec!["--tier"], "--tier needs a value"),
            (vec!["--tier", "small"], "expected NAME=ADDR"),
            (vec!["--tier", "=127.0.0.1:1"], "expected NAME=ADDR"),
            (vec!["--tier", "small="], "expected NAME=ADDR"),
            (vec!["--port", "1"], "unknown argument \"--port\""),
            (vec!["--tier", "a=x:1", "--tier", "a=x:2"], "given twice"),
        ];
        for (args, expected) in cases {
            let error = parse(&args).err().unwrap_or_default();
            assert!(error.contains(expected), "{args:?} gave {error:?}");
        }
    }
}
