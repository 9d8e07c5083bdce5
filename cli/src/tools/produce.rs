//! `eddy produce`: kafka-console-producer. One record per input line, from stdin or a
//! file; with `--parse-key`, the text before the first `--key-separator` (a tab by
//! default) is the key. Exits non-zero if any record was not acknowledged.

use std::collections::VecDeque;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use bytes::Bytes;
use clap::Args;
use eddy_client::records::parse_compression;
use eddy_client::{Acks, Producer, ProducerConfig, ProducerRecord};

use super::{key_value, Connect};

/// Records waiting for their acknowledgement before reading more input waits.
const MAX_UNACKED: usize = 100_000;

#[derive(Args)]
pub(crate) struct ProduceArgs {
    #[command(flatten)]
    connect: Connect,
    #[arg(long)]
    topic: String,
    /// Read lines from this file instead of stdin.
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// Split each line into key and value at the first --key-separator.
    #[arg(long)]
    parse_key: bool,
    #[arg(long, default_value = "\t")]
    key_separator: String,
    /// A header added to every record, key=value (repeatable).
    #[arg(long = "header", value_name = "KEY=VALUE")]
    headers: Vec<String>,
    /// Send every record to this partition instead of the partitioner's choice.
    #[arg(long)]
    partition: Option<i32>,
    /// 0, 1 or all.
    #[arg(long, default_value = "all")]
    acks: String,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    compression: String,
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
    #[arg(long, default_value_t = 16384)]
    batch_size: usize,
}

pub(crate) fn run(args: ProduceArgs) -> ExitCode {
    super::run(produce(args))
}

async fn produce(args: ProduceArgs) -> Result<(), String> {
    let acks =
        Acks::parse(&args.acks).ok_or_else(|| format!("--acks {}: use 0, 1 or all", args.acks))?;
    let compression = parse_compression(&args.compression).ok_or_else(|| {
        format!(
            "--compression {}: use none, gzip, snappy, lz4 or zstd",
            args.compression
        )
    })?;
    let headers: Vec<(String, Option<Bytes>)> = args
        .headers
        .iter()
        .map(|h| key_value(h).map(|(k, v)| (k, Some(Bytes::from(v)))))
        .collect::<Result<_, _>>()?;
    let producer = Producer::new(ProducerConfig {
        common: args.connect.common(),
        acks,
        compression,
        linger_ms: args.linger_ms,
        batch_size: args.batch_size,
        enable_idempotence: acks == Acks::All,
        ..ProducerConfig::default()
    })
    .map_err(|e| e.to_string())?;
    let input: Box<dyn BufRead> = match &args.file {
        Some(f) => Box::new(std::io::BufReader::new(
            std::fs::File::open(f).map_err(|e| format!("cannot open {}: {e}", f.display()))?,
        )),
        None => Box::new(std::io::BufReader::new(std::io::stdin())),
    };
    let mut unacked = VecDeque::new();
    let (mut sent, mut failed) = (0u64, 0u64);
    let mut first_error = None;
    let mut settle = |r: eddy_client::Result<eddy_client::RecordMetadata>| {
        if let Err(e) = r {
            failed += 1;
            first_error.get_or_insert(e.to_string());
        }
    };
    for line in input.lines() {
        let line = line.map_err(|e| format!("reading input failed: {e}"))?;
        let (key, value) = if args.parse_key {
            match line.split_once(args.key_separator.as_str()) {
                Some((k, v)) => (Some(Bytes::from(k.to_string())), v.to_string()),
                None => (None, line),
            }
        } else {
            (None, line)
        };
        let mut record = ProducerRecord::new(args.topic.clone(), key, Some(Bytes::from(value)));
        record.headers = headers.clone();
        record.partition = args.partition;
        unacked.push_back(
            producer
                .send_nowait(record)
                .await
                .map_err(|e| e.to_string())?,
        );
        sent += 1;
        while unacked.len() > MAX_UNACKED {
            settle(unacked.pop_front().expect("not empty").await);
        }
    }
    for d in unacked {
        settle(d.await);
    }
    producer.close().await;
    eprintln!(
        "Produced {} of {sent} records to {}.",
        sent - failed,
        args.topic
    );
    match first_error {
        Some(e) => Err(format!(
            "{failed} records were not acknowledged; the first: {e}"
        )),
        None => Ok(()),
    }
}
