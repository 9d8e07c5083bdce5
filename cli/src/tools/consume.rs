//! `eddy consume`: kafka-console-consumer. Reads a topic (every partition, or one) from
//! the beginning, the end, an offset or a timestamp, alone or in a group, and prints
//! each record's value (with `--print-key`, key<TAB>value), or with `--json` one JSON
//! object per line.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use eddy_client::{Consumer, ConsumerConfig, ConsumerRecord, OffsetReset, TopicPartition};

use super::{json, Connect};

#[derive(Args)]
pub(crate) struct ConsumeArgs {
    #[command(flatten)]
    connect: Connect,
    #[arg(long)]
    topic: String,
    /// Consume as a member of this group (offsets committed as it goes).
    #[arg(long)]
    group: Option<String>,
    /// Only this partition (not with --group).
    #[arg(long)]
    partition: Option<u32>,
    /// Start from the earliest offset (in a group: where the group has no offset).
    #[arg(long, conflicts_with_all = ["offset", "from_timestamp"])]
    from_beginning: bool,
    /// Start at this offset in each partition read (not with --group).
    #[arg(long, conflicts_with = "from_timestamp")]
    offset: Option<i64>,
    /// Start at the first record at or after this time, in ms since the epoch (not with
    /// --group).
    #[arg(long, value_name = "MS")]
    from_timestamp: Option<i64>,
    /// Exit after this many records.
    #[arg(long)]
    max_messages: Option<u64>,
    /// Exit when no record has come for this long.
    #[arg(long, value_name = "MS")]
    timeout_ms: Option<u64>,
    /// Print key<TAB>value.
    #[arg(long)]
    print_key: bool,
    /// Print one JSON object per record: topic, partition, offset, timestamp, key, value,
    /// headers.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: ConsumeArgs) -> ExitCode {
    super::run(consume(args))
}

async fn consume(args: ConsumeArgs) -> Result<(), String> {
    let e = |e: eddy_client::ClientError| e.to_string();
    if args.group.is_some()
        && (args.partition.is_some() || args.offset.is_some() || args.from_timestamp.is_some())
    {
        return Err("--partition, --offset and --from-timestamp read without a group; drop --group, or reset the group's offsets with `eddy groups --reset-offsets`".to_string());
    }
    let mut consumer = Consumer::new(ConsumerConfig {
        common: args.connect.common(),
        group_id: args.group.clone(),
        auto_offset_reset: if args.from_beginning {
            OffsetReset::Earliest
        } else {
            OffsetReset::Latest
        },
        ..ConsumerConfig::default()
    })
    .map_err(e)?;
    if args.group.is_some() {
        consumer.subscribe([args.topic.clone()]).map_err(e)?;
    } else {
        let meta = consumer
            .network()
            .topic_or_fetch(&args.topic, false)
            .await
            .map_err(e)?;
        let partitions: Vec<TopicPartition> = match args.partition {
            Some(p) => vec![TopicPartition::new(args.topic.clone(), p)],
            None => (0..meta.partitions.len() as u32)
                .map(|p| TopicPartition::new(args.topic.clone(), p))
                .collect(),
        };
        consumer.assign(partitions.clone());
        if let Some(o) = args.offset {
            for tp in &partitions {
                consumer.seek(tp, o);
            }
        } else if let Some(ts) = args.from_timestamp {
            consumer
                .seek_to_timestamp(&partitions, ts)
                .await
                .map_err(e)?;
        } else if args.from_beginning {
            consumer.seek_to_beginning(&partitions).await.map_err(e)?;
        } else {
            consumer.seek_to_end(&partitions).await.map_err(e)?;
        }
    }
    let mut count = 0u64;
    let mut idle = Duration::ZERO;
    let stdout = std::io::stdout();
    'outer: loop {
        let poll = Duration::from_millis(500);
        let records = consumer.poll(poll).await.map_err(e)?;
        if records.is_empty() {
            idle += poll;
            if args
                .timeout_ms
                .is_some_and(|t| idle >= Duration::from_millis(t))
            {
                break;
            }
            continue;
        }
        idle = Duration::ZERO;
        let mut out = stdout.lock();
        for (i, r) in records.iter().enumerate() {
            let line = if args.json {
                to_json(r)
            } else if args.print_key {
                format!("{}\t{}", text(r.key.as_deref()), text(r.value.as_deref()))
            } else {
                text(r.value.as_deref())
            };
            if writeln!(out, "{line}").is_err() {
                break 'outer; // stdout closed (a pipe into head): stop quietly
            }
            count += 1;
            if args.max_messages.is_some_and(|m| count >= m) {
                let _ = out.flush();
                // Step back over what was handed out but not printed, so that the
                // group commits only what was printed.
                let mut rewound = std::collections::BTreeSet::new();
                for rest in &records[i + 1..] {
                    let tp = TopicPartition::new(rest.topic.clone(), rest.partition as u32);
                    if rewound.insert(tp.clone()) {
                        consumer.seek(&tp, rest.offset);
                    }
                }
                break 'outer;
            }
        }
        let _ = out.flush();
    }
    eprintln!("Processed a total of {count} messages");
    consumer.close().await.map_err(e)
}

fn text(b: Option<&[u8]>) -> String {
    b.map_or_else(
        || "null".to_string(),
        |b| String::from_utf8_lossy(b).into_owned(),
    )
}

fn to_json(r: &ConsumerRecord) -> String {
    let headers: Vec<(&str, String)> = r
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), json::bytes(v.as_deref())))
        .collect();
    json::object(&[
        ("topic", json::string(&r.topic)),
        ("partition", r.partition.to_string()),
        ("offset", r.offset.to_string()),
        ("timestamp", r.timestamp_ms.to_string()),
        ("key", json::bytes(r.key.as_deref())),
        ("value", json::bytes(r.value.as_deref())),
        ("headers", json::object(&headers)),
    ])
}
