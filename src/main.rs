//! Thin entry point: parse the command line, resolve the settings, run a command, map the
//! outcome to an exit code.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use ctsguard::cli::{Cli, Command, LogFormat};
use ctsguard::commands::{self, Outcome};
use ctsguard::config::{ScanSettings, Settings};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let filter = match EnvFilter::try_new(&cli.global.log) {
        Ok(f) => f,
        Err(e) => {
            return report(Outcome::Unusable(format!(
                "--log/CTSGUARD_LOG: {:?} is not a log filter (error, warn, info, debug, trace, or a tracing directive): {e}",
                cli.global.log
            )))
        }
    };
    let terminal = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    // Machines read logs that do not go to a terminal: one JSON object a line, the event's
    // fields (key, reason, ...) at the top level next to timestamp, level and message.
    match cli.global.log_format.unwrap_or(if terminal {
        LogFormat::Text
    } else {
        LogFormat::Json
    }) {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
        // Colour codes only for a person at a terminal.
        LogFormat::Text => builder.with_ansi(terminal).init(),
    }

    let settings = match Settings::resolve(&cli.global, &matches) {
        Ok(s) => s,
        Err(e) => return report(Outcome::Unusable(e.to_string())),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return report(Outcome::Unusable(format!("cannot start the runtime: {e}"))),
    };
    let outcome = runtime.block_on(async {
        match &cli.command {
            Command::Backfill(a) => commands::backfill(settings, &a.from, a.to.as_deref()).await,
            Command::Scan(a) => {
                let sub = matches.subcommand_matches("scan").unwrap_or(&matches);
                match ScanSettings::resolve(a, sub, &settings) {
                    Ok(sc) => commands::scan(settings, sc).await,
                    Err(e) => Outcome::Unusable(e.to_string()),
                }
            }
            Command::Check(a) => commands::check(settings, a.send_test).await,
            Command::Verify(a) => commands::verify(settings, a).await,
        }
    });
    report(outcome)
}

fn report(outcome: Outcome) -> ExitCode {
    if let Outcome::Unusable(msg) | Outcome::Busy(msg) = &outcome {
        eprintln!("error: {msg}");
    }
    ExitCode::from(outcome.exit_code())
}
