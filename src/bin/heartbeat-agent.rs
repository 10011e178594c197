//! The heartbeat agent. Options and exit codes: `heartbeat-agent --help`.
//! Results go to stdout, one line per heartbeat; problems to stderr as `heartbeat-agent: …`.
//! `heartbeat-agent report …` prints the outage report instead (`heartbeat-agent report --help`);
//! every other invocation is the agent's own flags, as before.

use std::process::ExitCode;

use clap::Parser;
use isp_monitor::agent::{self, Outcome, config::Options};
use isp_monitor::report::cli::ReportOptions;

fn main() -> ExitCode {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|arg| arg == "report")
    {
        let options = ReportOptions::parse_from(std::env::args_os().skip(1));
        return match options.run(chrono::Utc::now()) {
            Ok(text) => {
                use std::io::Write;
                // A closed pipe (`| head`) is not an error worth a message.
                let _ = std::io::stdout().lock().write_all(text.as_bytes());
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("heartbeat-agent: {message}");
                ExitCode::from(Outcome::BadConfiguration as u8)
            }
        };
    }
    // clap prints its own message and exits 2 for bad usage.
    let options = Options::parse();
    let config = match options.validate() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("heartbeat-agent: {message}");
            return ExitCode::from(Outcome::BadConfiguration as u8);
        }
    };
    // One thread is plenty for one request a minute, and keeps the agent's memory small.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("heartbeat-agent: cannot start the async runtime: {err}");
            return ExitCode::from(Outcome::BadConfiguration as u8);
        }
    };
    match runtime.block_on(agent::run(config, isp_monitor::shutdown_signal())) {
        Ok(outcome) => ExitCode::from(outcome as u8),
        Err(message) => {
            eprintln!("heartbeat-agent: {message}");
            ExitCode::from(Outcome::BadConfiguration as u8)
        }
    }
}
