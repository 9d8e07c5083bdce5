//! The `eddy` binary: `eddy broker` runs a broker, `eddy sim` the seeded simulator, and
//! the everyday Kafka tools (`topics`, `produce`, `consume`, `groups`, `perf`) run on
//! Eddy's client.

mod broker;
mod sim;
mod tools;

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
    /// Create, list, describe, delete and alter topics (kafka-topics).
    Topics(tools::topics::TopicsArgs),
    /// Produce lines from stdin or a file (kafka-console-producer).
    Produce(tools::produce::ProduceArgs),
    /// Print a topic's records (kafka-console-consumer).
    Consume(tools::consume::ConsumeArgs),
    /// List, describe, delete consumer groups and reset their offsets
    /// (kafka-consumer-groups).
    Groups(tools::groups::GroupsArgs),
    /// Measure produce or consume throughput and latency (the Kafka perf-test tools).
    Perf(tools::perf::PerfArgs),
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
        Command::Topics(args) => tools::topics::run(args),
        Command::Produce(args) => tools::produce::run(args),
        Command::Consume(args) => tools::consume::run(args),
        Command::Groups(args) => tools::groups::run(args),
        Command::Perf(args) => tools::perf::run(args),
    }
}
