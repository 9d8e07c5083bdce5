//! `eddy groups`: kafka-consumer-groups. List groups, describe one (members and, per
//! partition, the committed offset, the log end offset and the lag), delete one, and
//! reset a group's offsets (a plan by default, committed with `--execute`).

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::{ArgGroup, Args};
use eddy_client::consumer::{list_offsets, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use eddy_client::{Admin, TopicPartition};

use super::{json, Connect};

#[derive(Args)]
#[command(group(ArgGroup::new("action").required(true).args(["list", "describe", "delete", "reset_offsets"])))]
#[command(group(ArgGroup::new("target").args(["to_earliest", "to_latest", "to_offset", "shift_by"])))]
pub(crate) struct GroupsArgs {
    #[command(flatten)]
    connect: Connect,
    #[arg(long)]
    list: bool,
    #[arg(long)]
    describe: bool,
    #[arg(long)]
    delete: bool,
    /// Reset --group's offsets on --topic (the group must have no active members).
    #[arg(long)]
    reset_offsets: bool,
    #[arg(long)]
    group: Option<String>,
    /// The topic whose offsets --reset-offsets moves (all its partitions).
    #[arg(long)]
    topic: Option<String>,
    #[arg(long)]
    to_earliest: bool,
    #[arg(long)]
    to_latest: bool,
    #[arg(long)]
    to_offset: Option<i64>,
    /// Move each committed offset by this much (negative: back), kept within the log.
    #[arg(long, allow_hyphen_values = true)]
    shift_by: Option<i64>,
    /// Commit the reset; without it, only print the plan.
    #[arg(long)]
    execute: bool,
    /// Print JSON, one object per line.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: GroupsArgs) -> ExitCode {
    super::run(async move {
        let admin = Admin::new(args.connect.common()).map_err(|e| e.to_string())?;
        let result = act(&admin, &args).await;
        admin.close().await;
        result
    })
}

async fn act(admin: &Admin, args: &GroupsArgs) -> Result<(), String> {
    let e = |e: eddy_client::ClientError| e.to_string();
    let group = || {
        args.group
            .clone()
            .ok_or_else(|| "this action needs --group NAME".to_string())
    };
    if args.list {
        for g in admin.list_groups().await.map_err(e)? {
            if args.json {
                println!(
                    "{}",
                    json::object(&[
                        ("group", json::string(&g.group_id)),
                        ("state", json::string(&g.state)),
                        ("protocol_type", json::string(&g.protocol_type)),
                    ])
                );
            } else {
                println!("{}", g.group_id);
            }
        }
    } else if args.describe {
        let group = group()?;
        let d = admin.describe_group(&group).await.map_err(e)?;
        let lags = admin.group_lag(&group).await.map_err(e)?;
        let mut owner: BTreeMap<TopicPartition, (&str, &str, &str)> = BTreeMap::new();
        for m in &d.members {
            for tp in &m.assignment {
                owner.insert(tp.clone(), (&m.member_id, &m.client_host, &m.client_id));
            }
        }
        if !args.json {
            println!(
                "Group {group} is {} with {} members (assignor {}).\n",
                d.state,
                d.members.len(),
                if d.protocol.is_empty() {
                    "-"
                } else {
                    &d.protocol
                }
            );
            println!(
                "{:<20} {:<20} {:>9} {:>14} {:>14} {:>8}  {:<40} {:<16} CLIENT-ID",
                "GROUP",
                "TOPIC",
                "PARTITION",
                "CURRENT-OFFSET",
                "LOG-END-OFFSET",
                "LAG",
                "CONSUMER-ID",
                "HOST"
            );
        }
        for l in &lags {
            let (member, host, client) =
                owner.get(&l.partition).copied().unwrap_or(("-", "-", "-"));
            if args.json {
                println!(
                    "{}",
                    json::object(&[
                        ("group", json::string(&group)),
                        ("topic", json::string(&l.partition.topic)),
                        ("partition", l.partition.partition.to_string()),
                        ("current_offset", l.committed.to_string()),
                        ("log_end_offset", l.log_end_offset.to_string()),
                        ("lag", l.lag.to_string()),
                        ("consumer_id", json::string(member)),
                        ("host", json::string(host)),
                        ("client_id", json::string(client)),
                    ])
                );
            } else {
                println!(
                    "{:<20} {:<20} {:>9} {:>14} {:>14} {:>8}  {:<40} {:<16} {}",
                    group,
                    l.partition.topic,
                    l.partition.partition,
                    l.committed,
                    l.log_end_offset,
                    l.lag,
                    member,
                    host,
                    client
                );
            }
        }
    } else if args.delete {
        let group = group()?;
        admin.delete_group(&group).await.map_err(e)?;
        println!("Deleted group {group}.");
    } else if args.reset_offsets {
        let group = group()?;
        let topic = args
            .topic
            .clone()
            .ok_or_else(|| "--reset-offsets needs --topic NAME".to_string())?;
        let meta = admin
            .network()
            .topic_or_fetch(&topic, false)
            .await
            .map_err(e)?;
        let tps: Vec<TopicPartition> = (0..meta.partitions.len() as u32)
            .map(|p| TopicPartition::new(topic.clone(), p))
            .collect();
        let net = admin.network();
        let earliest = list_offsets(net, &tps, EARLIEST_TIMESTAMP)
            .await
            .map_err(e)?;
        let latest = list_offsets(net, &tps, LATEST_TIMESTAMP).await.map_err(e)?;
        let current: BTreeMap<TopicPartition, i64> = admin
            .group_lag(&group)
            .await
            .map_err(e)?
            .into_iter()
            .map(|l| (l.partition, l.committed))
            .collect();
        let mut plan = BTreeMap::new();
        for tp in &tps {
            let (lo, hi) = (earliest[tp], latest[tp]);
            let target = if args.to_earliest {
                lo
            } else if args.to_latest {
                hi
            } else if let Some(o) = args.to_offset {
                o
            } else if let Some(d) = args.shift_by {
                current.get(tp).copied().filter(|c| *c >= 0).unwrap_or(lo) + d
            } else {
                return Err(
                    "--reset-offsets needs --to-earliest, --to-latest, --to-offset or --shift-by"
                        .to_string(),
                );
            };
            plan.insert(tp.clone(), target.clamp(lo, hi));
        }
        println!(
            "{:<20} {:<20} {:>9} {:>14}",
            "GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"
        );
        for (tp, o) in &plan {
            println!(
                "{:<20} {:<20} {:>9} {:>14}",
                group, tp.topic, tp.partition, o
            );
        }
        if args.execute {
            admin.reset_group_offsets(&group, &plan).await.map_err(e)?;
        } else {
            println!("\n(dry run: add --execute to commit these offsets)");
        }
    }
    Ok(())
}
