//! The `eddy` binary: `eddy broker` runs a broker, `eddy sim` the seeded simulator. The
//! everyday tools arrive with their issues.

mod broker;
mod sim;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "eddy",
    version,
    about = "Eddy: a Kafka-compatible streaming platform built on a deterministic simulator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker. With no options: a single-node cluster on 127.0.0.1:9092, data in
    /// ./data.
    Broker(broker::BrokerArgs),
    /// Run the seeded simulator: one seed, or many, of a scenario.
    Sim(sim::SimArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EDDY_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Broker(args) => broker::run(args),
        Command::Sim(args) => sim::run(args),
    }
}
