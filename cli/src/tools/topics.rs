//! `eddy topics`: kafka-topics. Create, list, describe, delete and alter topics
//! (partitions and configs).

use std::process::ExitCode;

use clap::{ArgGroup, Args};
use eddy_client::admin::{AlterConfigOp, ConfigResource};
use eddy_client::{Admin, NewTopic};

use super::{json, key_value, Connect};

#[derive(Args)]
#[command(group(ArgGroup::new("action").required(true).args(["create", "list", "describe", "delete", "alter"])))]
pub(crate) struct TopicsArgs {
    #[command(flatten)]
    connect: Connect,
    /// Create --topic.
    #[arg(long)]
    create: bool,
    /// List topic names.
    #[arg(long)]
    list: bool,
    /// Describe --topic (or every topic): partitions, leader, replicas, ISR, configs.
    #[arg(long)]
    describe: bool,
    /// Delete --topic.
    #[arg(long)]
    delete: bool,
    /// Alter --topic: raise --partitions, set --config, remove --delete-config.
    #[arg(long)]
    alter: bool,
    #[arg(long)]
    topic: Option<String>,
    /// Partitions (create: default the broker's num.partitions; alter: the new total).
    #[arg(long)]
    partitions: Option<i32>,
    /// Replicas per partition (default the broker's default.replication.factor).
    #[arg(long)]
    replication_factor: Option<i16>,
    /// A topic config as key=value (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE")]
    configs: Vec<String>,
    /// A topic config to remove, back to the broker's default (repeatable).
    #[arg(long = "delete-config", value_name = "KEY")]
    delete_configs: Vec<String>,
    /// With --create: succeed if the topic exists already.
    #[arg(long)]
    if_not_exists: bool,
    /// With --list: include internal topics (__consumer_offsets).
    #[arg(long)]
    include_internal: bool,
    /// Print JSON, one object per line.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: TopicsArgs) -> ExitCode {
    super::run(async move {
        let admin = Admin::new(args.connect.common()).map_err(|e| e.to_string())?;
        let result = act(&admin, &args).await;
        admin.close().await;
        result
    })
}

fn need_topic(args: &TopicsArgs) -> Result<String, String> {
    args.topic
        .clone()
        .ok_or_else(|| "this action needs --topic NAME".to_string())
}

async fn act(admin: &Admin, args: &TopicsArgs) -> Result<(), String> {
    let e = |e: eddy_client::ClientError| e.to_string();
    if args.create {
        let topic = need_topic(args)?;
        let mut t = NewTopic::new(
            topic.clone(),
            args.partitions.unwrap_or(-1),
            args.replication_factor.unwrap_or(-1),
        );
        for c in &args.configs {
            let (k, v) = key_value(c)?;
            t.configs.insert(k, v);
        }
        let created = if args.if_not_exists {
            admin.create_topic_if_missing(&t).await
        } else {
            admin.create_topics(&[t]).await
        };
        created.map_err(e)?;
        println!("Created topic {topic}.");
    } else if args.list {
        for t in admin.list_topics(args.include_internal).await.map_err(e)? {
            println!("{t}");
        }
    } else if args.describe {
        let topics = match &args.topic {
            Some(t) => vec![t.clone()],
            None => admin.list_topics(args.include_internal).await.map_err(e)?,
        };
        for t in admin.describe_topics(&topics).await.map_err(e)? {
            let configs = admin
                .describe_configs(&ConfigResource::Topic(t.name.clone()))
                .await
                .map_err(e)?;
            // Only what was set on the topic itself (ConfigSource 1), as kafka-topics shows.
            let set: Vec<(String, String)> = configs
                .iter()
                .filter(|c| c.source == 1)
                .map(|c| (c.name.clone(), c.value.clone().unwrap_or_default()))
                .collect();
            if args.json {
                print_json(&t, &set);
                continue;
            }
            let rf = t.partitions.first().map_or(0, |p| p.replicas.len());
            let cfg: Vec<String> = set.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!(
                "Topic: {}\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {}",
                t.name,
                t.partitions.len(),
                rf,
                cfg.join(",")
            );
            for p in &t.partitions {
                println!(
                    "\tTopic: {}\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}",
                    t.name,
                    p.partition,
                    p.leader,
                    ids(&p.replicas),
                    ids(&p.isr)
                );
            }
        }
    } else if args.delete {
        let topic = need_topic(args)?;
        admin
            .delete_topics(std::slice::from_ref(&topic))
            .await
            .map_err(e)?;
        println!("Deleted topic {topic}.");
    } else if args.alter {
        let topic = need_topic(args)?;
        if let Some(n) = args.partitions {
            admin.create_partitions(&topic, n).await.map_err(e)?;
            println!("Topic {topic} now has {n} partitions.");
        }
        let mut ops = Vec::new();
        for c in &args.configs {
            let (k, v) = key_value(c)?;
            ops.push(AlterConfigOp::Set(k, v));
        }
        ops.extend(
            args.delete_configs
                .iter()
                .cloned()
                .map(AlterConfigOp::Delete),
        );
        if !ops.is_empty() {
            admin
                .alter_configs(&ConfigResource::Topic(topic.clone()), &ops)
                .await
                .map_err(e)?;
            println!("Altered the configs of topic {topic}.");
        }
        if args.partitions.is_none() && ops.is_empty() {
            return Err("--alter needs --partitions, --config or --delete-config".to_string());
        }
    }
    Ok(())
}

fn ids(ids: &[i32]) -> String {
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

fn print_json(t: &eddy_client::network::TopicMetadata, configs: &[(String, String)]) {
    let partitions: Vec<String> = t
        .partitions
        .iter()
        .map(|p| {
            let list = |v: &[i32]| json::array(&v.iter().map(i32::to_string).collect::<Vec<_>>());
            json::object(&[
                ("partition", p.partition.to_string()),
                ("leader", p.leader.to_string()),
                ("replicas", list(&p.replicas)),
                ("isr", list(&p.isr)),
            ])
        })
        .collect();
    let configs: Vec<(&str, String)> = configs
        .iter()
        .map(|(k, v)| (k.as_str(), json::string(v)))
        .collect();
    println!(
        "{}",
        json::object(&[
            ("topic", json::string(&t.name)),
            ("partitions", json::array(&partitions)),
            ("configs", json::object(&configs)),
        ])
    );
}
