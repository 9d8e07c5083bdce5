//! The everyday Kafka tools, on Eddy's client: `eddy topics`, `eddy produce`,
//! `eddy consume`, `eddy groups` and `eddy perf`. Each mirrors the Kafka tool a user
//! already knows (kafka-topics, kafka-console-producer, kafka-console-consumer,
//! kafka-consumer-groups, the perf-test tools) and takes `--bootstrap-server`.

pub(crate) mod consume;
pub(crate) mod groups;
mod json;
pub(crate) mod perf;
pub(crate) mod produce;
pub(crate) mod topics;

use std::future::Future;
use std::process::ExitCode;

use clap::Args;
use eddy_client::CommonConfig;

/// The connection settings every tool takes.
#[derive(Args, Clone, Debug)]
pub(crate) struct Connect {
    /// Brokers to bootstrap from, host:port, comma-separated.
    #[arg(long, default_value = "127.0.0.1:9092", value_name = "HOST:PORT,...")]
    bootstrap_server: String,
    /// How long one request may wait for its answer (request.timeout.ms).
    #[arg(long, default_value_t = 30_000, value_name = "MS")]
    request_timeout_ms: u64,
}

impl Connect {
    pub(crate) fn common(&self) -> CommonConfig {
        CommonConfig {
            bootstrap_servers: self.bootstrap_server.clone(),
            client_id: "eddy-tools".to_string(),
            request_timeout_ms: self.request_timeout_ms,
            ..CommonConfig::default()
        }
    }
}

/// Runs a tool's async body on a fresh runtime; an error is printed as a sentence and
/// exits with 1.
pub(crate) fn run<F>(body: F) -> ExitCode
where
    F: Future<Output = Result<(), String>>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(body) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Parses `key=value`.
pub(crate) fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?} is not key=value"))
}
