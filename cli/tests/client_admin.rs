//! Eddy's admin client against a real broker: topics, partitions, configs, the cluster,
//! and errors that name the broker and the topic.

mod support;

use eddy_client::admin::{AlterConfigOp, ConfigResource};
use eddy_client::{Admin, ClientError, CommonConfig, NewTopic};
use support::Broker;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_manages_topics_configs_and_describes_the_cluster() {
    let broker = Broker::start("client-admin", &[]);
    let admin = Admin::new(CommonConfig {
        bootstrap_servers: broker.addr.clone(),
        ..CommonConfig::default()
    })
    .unwrap();

    let cluster = admin.describe_cluster().await.unwrap();
    assert_eq!(cluster.brokers.len(), 1);
    assert_eq!(cluster.brokers[0].addr(), broker.addr);

    let mut t = NewTopic::new("admin-a", 2, 1);
    t.configs.insert("retention.ms".into(), "5000000".into());
    admin.create_topic_if_missing(&t).await.unwrap();
    admin
        .create_topic_if_missing(&NewTopic::new("admin-b", -1, -1))
        .await
        .unwrap();
    assert_eq!(
        admin.list_topics(false).await.unwrap(),
        vec!["admin-a", "admin-b"]
    );

    let err = admin
        .create_topics(&[NewTopic::new("admin-a", 1, 1)])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Topic { topic, .. } if topic == "admin-a"),
        "{err}"
    );
    assert!(
        err.to_string().contains(&broker.addr),
        "names the broker: {err}"
    );

    admin.create_partitions("admin-a", 4).await.unwrap();
    admin
        .wait_for_leaders("admin-a", std::time::Duration::from_secs(10))
        .await
        .unwrap();
    let described = admin
        .describe_topics(&["admin-a".to_string()])
        .await
        .unwrap();
    assert_eq!(described[0].partitions.len(), 4);

    let resource = ConfigResource::Topic("admin-a".into());
    let value = |configs: &[eddy_client::admin::ConfigEntry], name: &str| {
        configs
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| c.value.clone())
    };
    let configs = admin.describe_configs(&resource).await.unwrap();
    assert_eq!(value(&configs, "retention.ms").as_deref(), Some("5000000"));
    admin
        .alter_configs(
            &resource,
            &[
                AlterConfigOp::Set("segment.bytes".into(), "1048576".into()),
                AlterConfigOp::Delete("retention.ms".into()),
            ],
        )
        .await
        .unwrap();
    let configs = admin.describe_configs(&resource).await.unwrap();
    assert_eq!(value(&configs, "segment.bytes").as_deref(), Some("1048576"));
    assert_eq!(
        value(&configs, "retention.ms").as_deref(),
        Some("604800000"),
        "deleted: back to the broker's default"
    );

    admin.delete_topics(&["admin-b".to_string()]).await.unwrap();
    assert_eq!(admin.list_topics(false).await.unwrap(), vec!["admin-a"]);
    admin.close().await;
}

/// Many requests pipelined on one connection from many tasks each get their own answer:
/// ListOffsets for a different partition each, whose answers say which partition they
/// are about, so a mismatched correlation would show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_on_one_connection_each_get_their_own_answer() {
    use bytes::Bytes;
    use eddy_client::{Producer, ProducerConfig, ProducerRecord, TopicPartition};

    let broker = Broker::start("client-pipelining", &[]);
    let common = CommonConfig {
        bootstrap_servers: broker.addr.clone(),
        ..CommonConfig::default()
    };
    let admin = Admin::new(common.clone()).unwrap();
    admin
        .create_topic_if_missing(&NewTopic::new("piped", 8, 1))
        .await
        .unwrap();
    // Partition p holds p records, so its end offset names it.
    let producer = Producer::new(ProducerConfig {
        common: common.clone(),
        ..ProducerConfig::default()
    })
    .unwrap();
    for p in 0..8 {
        for _ in 0..p {
            let mut r = ProducerRecord::new("piped", None, Some(Bytes::from_static(b"x")));
            r.partition = Some(p);
            producer.send_nowait(r).await.unwrap();
        }
    }
    producer.close().await;

    let net = admin.network().clone();
    let conn = net.any().await.unwrap();
    assert!(
        conn.version(kafka_protocol::messages::ApiKey::Produce)
            .unwrap()
            >= 3
    );
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let net = net.clone();
            tokio::spawn(async move {
                let p = (i % 8) as u32;
                let tp = TopicPartition::new("piped", p);
                let ends = eddy_client::consumer::list_offsets(&net, std::slice::from_ref(&tp), -1)
                    .await
                    .unwrap();
                assert_eq!(ends[&tp], i64::from(p), "the answer for {tp}");
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    admin.close().await;
}
