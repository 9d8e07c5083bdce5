//! `eddy broker`: runs a broker. With no configuration at all it is a single-node
//! cluster on 127.0.0.1:9092 with its data under ./data.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

#[derive(Args)]
pub(crate) struct BrokerArgs {
    /// A server.properties file, with Kafka's key names.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// A setting applied over the file, as key=value (repeatable), e.g.
    /// --override log.dirs=/tmp/eddy
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

pub(crate) fn run(args: BrokerArgs) -> ExitCode {
    let (cfg, warnings) =
        match eddy_net::load_broker_config(args.config.as_deref(), &args.overrides) {
            Ok(loaded) => loaded,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
    for w in &warnings {
        eprintln!("warning: {w}");
    }
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
    runtime.block_on(async move {
        // Differs on every start, so the cluster can tell a restart from a slow broker.
        let incarnation = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(1);
        let log_dirs = cfg.log_dirs.join(",");
        let node_id = cfg.node_id.0;
        let broker = match eddy_net::broker::Broker::start(cfg, incarnation).await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let addr = broker
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| "?".into());
        tracing::info!(node_id, %addr, log_dirs, "eddy broker started");
        eprintln!("eddy broker {node_id} listening on {addr}, data in {log_dirs}");
        broker.serve(shutdown_signal()).await;
        eprintln!("eddy broker {node_id} stopped");
        ExitCode::SUCCESS
    })
}

/// Completes on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            biased;
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
