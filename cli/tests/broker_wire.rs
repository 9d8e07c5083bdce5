//! `eddy broker` at the frame level: what each kind of bad input gets (the error code a
//! Kafka broker sends, or a closed connection), that the broker keeps serving everyone
//! else afterwards, and the wire behaviours of KAFKA-COMPAT.md that other
//! Kafka-compatible brokers got wrong.

mod support;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, FetchRequest,
    ListOffsetsRequest, MetadataRequest, ProduceRequest, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use support::{batch, Broker, Raw};

fn topic(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

fn create(raw: &mut Raw, name: &str, partitions: i32) {
    let req = CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
        .with_name(topic(name))
        .with_num_partitions(partitions)
        .with_replication_factor(1)]);
    let ResponseKind::CreateTopics(resp) =
        raw.call(ApiKey::CreateTopics, 4, RequestKind::CreateTopics(req))
    else {
        panic!("CreateTopics answer");
    };
    assert_eq!(resp.topics[0].error_code, 0, "{resp:?}");
}

fn produce_req(acks: i16, name: &str, partition: i32, records: Bytes) -> RequestKind {
    RequestKind::Produce(
        ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(5_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic(name))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(records))])]),
    )
}

/// (error code, base offset) of a one-partition produce.
fn produce(raw: &mut Raw, name: &str, partition: i32, records: Bytes) -> (i16, i64) {
    let ResponseKind::Produce(resp) =
        raw.call(ApiKey::Produce, 7, produce_req(1, name, partition, records))
    else {
        panic!("Produce answer");
    };
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

fn fetch_req(name: &str, offset: i64, max_wait_ms: i32) -> RequestKind {
    RequestKind::Fetch(
        FetchRequest::default()
            .with_max_wait_ms(max_wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(topic(name))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(1 << 20)])]),
    )
}

/// The broker still answers a well-formed request on a new connection.
fn still_serving(broker: &Broker) {
    let mut raw = Raw::connect(&broker.addr);
    let resp = raw.call(
        ApiKey::ApiVersions,
        3,
        RequestKind::ApiVersions(ApiVersionsRequest::default()),
    );
    assert!(matches!(resp, ResponseKind::ApiVersions(r) if r.error_code == 0));
}

#[test]
fn oversized_and_malformed_frames_close_only_their_own_connection() {
    let broker = Broker::start("wire-bad-frames", &["socket.request.max.bytes=1048576"]);
    let mut bystander = Raw::connect(&broker.addr);

    // A length over socket.request.max.bytes: closed before the body is read.
    let mut raw = Raw::connect(&broker.addr);
    raw.stream_write(&(64 * 1024 * 1024i32).to_be_bytes());
    assert!(raw.is_closed(), "oversized frame");
    // A negative length.
    let mut raw = Raw::connect(&broker.addr);
    raw.stream_write(&(-5i32).to_be_bytes());
    assert!(raw.is_closed(), "negative length");
    // Too short for a request header.
    let mut raw = Raw::connect(&broker.addr);
    raw.send_frame(&[0, 3, 0]);
    assert!(raw.is_closed(), "short frame");
    // An API key Kafka does not have.
    let mut raw = Raw::connect(&broker.addr);
    raw.send_frame(&[0x27, 0x0f, 0, 0, 0, 0, 0, 1]);
    assert!(raw.is_closed(), "unknown api key");
    // A version Eddy does not serve (Fetch v3).
    let mut raw = Raw::connect(&broker.addr);
    raw.send_frame(&[0, 1, 0, 3, 0, 0, 0, 1, 0, 0]);
    assert!(raw.is_closed(), "unsupported version");
    // A Metadata v1 body claiming a topic array far longer than the frame.
    let mut raw = Raw::connect(&broker.addr);
    raw.send_frame(&[0, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 9, 0, 1]);
    assert!(raw.is_closed(), "truncated body");

    // Counts far past the frame's end, which the codec would pass to Vec::with_capacity
    // (a ~150 GB allocation, and an abort): Metadata v1 with 2^31-1 topics, and v9 with a
    // compact-array count of 2^32-2.
    let mut raw = Raw::connect(&broker.addr);
    raw.send_frame(&[0, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0x7f, 0xff, 0xff, 0xff]);
    assert!(raw.is_closed(), "huge int32 count");
    let mut raw = Raw::connect(&broker.addr);
    raw.send_frame(&[
        0, 3, 0, 9, 0, 0, 0, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 0, 0,
    ]);
    assert!(raw.is_closed(), "huge varint count");

    // The connection that behaved is still served, and so are new ones.
    let resp = bystander.call(
        ApiKey::Metadata,
        1,
        RequestKind::Metadata(MetadataRequest::default()),
    );
    assert!(matches!(resp, ResponseKind::Metadata(_)));
    still_serving(&broker);
}

#[test]
fn api_versions_newer_than_eddys_is_answered_in_v0_with_unsupported_version() {
    let broker = Broker::start("wire-apiversions", &[]);
    let mut raw = Raw::connect(&broker.addr);
    // ApiVersions v99 with a body Eddy cannot know (KIP-511).
    raw.send_frame(&[
        0, 18, 0, 99, 0, 0, 0, 42, 0, 4, b'j', b'a', b'v', b'a', 7, 7, 7,
    ]);
    let (cid, mut body) = raw.recv_raw(ApiKey::ApiVersions, 0).expect("an answer");
    assert_eq!(cid, 42);
    let resp = ApiVersionsResponse::decode(&mut body, 0).expect("v0 body");
    assert_eq!(resp.error_code, 35, "UNSUPPORTED_VERSION");
    let range = |k: ApiKey| {
        resp.api_keys
            .iter()
            .find(|a| a.api_key == k as i16)
            .map(|a| (a.min_version, a.max_version))
    };
    assert_eq!(range(ApiKey::ApiVersions), Some((0, 4)));
    assert_eq!(
        range(ApiKey::Produce),
        Some((0, 9)),
        "Produce advertised from v0"
    );
    // The same connection then negotiates normally.
    let resp = raw.call(
        ApiKey::ApiVersions,
        3,
        RequestKind::ApiVersions(ApiVersionsRequest::default()),
    );
    assert!(matches!(resp, ResponseKind::ApiVersions(r) if r.error_code == 0));
}

#[test]
fn bad_produce_requests_get_kafkas_error_codes_and_lose_nothing() {
    let broker = Broker::start(
        "wire-produce",
        &["message.max.bytes=2000", "auto.create.topics.enable=false"],
    );
    let mut raw = Raw::connect(&broker.addr);
    create(&mut raw, "t", 1);
    assert_eq!(produce(&mut raw, "t", 0, batch(&["a", "b"])), (0, 0));

    // A flipped byte in the records: the CRC no longer matches.
    let mut corrupt = BytesMut::from(&batch(&["c"])[..]);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x5a;
    assert_eq!(
        produce(&mut raw, "t", 0, corrupt.freeze()).0,
        2,
        "CORRUPT_MESSAGE"
    );
    // Unknown topic and unknown partition.
    assert_eq!(
        produce(&mut raw, "nope", 0, batch(&["x"])).0,
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    assert_eq!(
        produce(&mut raw, "t", 7, batch(&["x"])).0,
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    // Over message.max.bytes.
    let big = "y".repeat(3000);
    assert_eq!(
        produce(&mut raw, "t", 0, batch(&[&big])).0,
        10,
        "MESSAGE_TOO_LARGE"
    );
    // Two batches where v3+ allows exactly one.
    let mut two = BytesMut::from(&batch(&["d"])[..]);
    two.put_slice(&batch(&["e"]));
    assert_eq!(
        produce(&mut raw, "t", 0, two.freeze()).0,
        87,
        "INVALID_RECORD"
    );
    // acks=2 does not exist.
    let ResponseKind::Produce(resp) =
        raw.call(ApiKey::Produce, 7, produce_req(2, "t", 0, batch(&["z"])))
    else {
        panic!()
    };
    assert_eq!(
        resp.responses[0].partition_responses[0].error_code, 21,
        "INVALID_REQUIRED_ACKS"
    );

    // Nothing refused was stored; the good write still is, and the next one follows it.
    assert_eq!(produce(&mut raw, "t", 0, batch(&["f"])), (0, 2));
}

#[test]
fn acks_0_gets_no_response_and_responses_keep_request_order() {
    let broker = Broker::start("wire-order", &[]);
    let mut raw = Raw::connect(&broker.addr);
    create(&mut raw, "o", 1);
    // Pipelined: acks=0 produce, Metadata, acks=1 produce, Fetch (long poll), ApiVersions.
    let c0 = raw.send(
        ApiKey::Produce,
        7,
        &produce_req(0, "o", 0, batch(&["zero"])),
    );
    let c1 = raw.send(
        ApiKey::Metadata,
        4,
        &RequestKind::Metadata(MetadataRequest::default()),
    );
    let c2 = raw.send(ApiKey::Produce, 7, &produce_req(1, "o", 0, batch(&["one"])));
    let c3 = raw.send(ApiKey::Fetch, 11, &fetch_req("o", 2, 200));
    let c4 = raw.send(
        ApiKey::ApiVersions,
        3,
        &RequestKind::ApiVersions(ApiVersionsRequest::default()),
    );
    assert_eq!(
        raw.recv(ApiKey::Metadata, 4).0,
        c1,
        "no answer for acks=0 ({c0})"
    );
    let (cid, resp) = raw.recv(ApiKey::Produce, 7);
    assert_eq!(cid, c2);
    let ResponseKind::Produce(resp) = resp else {
        panic!()
    };
    assert_eq!(
        resp.responses[0].partition_responses[0].base_offset, 1,
        "the acks=0 batch was appended first, in request order"
    );
    assert_eq!(raw.recv(ApiKey::Fetch, 11).0, c3);
    assert_eq!(raw.recv(ApiKey::ApiVersions, 3).0, c4);
}

#[test]
fn fetch_returns_whole_batches_empty_records_never_null_and_offsets_as_kafka() {
    let broker = Broker::start("wire-fetch", &[]);
    let mut raw = Raw::connect(&broker.addr);
    create(&mut raw, "f", 1);
    let first = batch(&["r0", "r1", "r2"]);
    assert_eq!(produce(&mut raw, "f", 0, first.clone()).0, 0);
    assert_eq!(produce(&mut raw, "f", 0, batch(&["r3"])).0, 0);

    // From the middle of the first batch: the whole batch comes back (the client skips).
    let ResponseKind::Fetch(resp) = raw.call(ApiKey::Fetch, 11, fetch_req("f", 1, 0)) else {
        panic!()
    };
    let p = &resp.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    assert_eq!(p.high_watermark, 4);
    assert_eq!(p.last_stable_offset, 4);
    assert_eq!(p.log_start_offset, 0);
    let records = p.records.as_ref().expect("records");
    // Both batches fit; the first starts at offset 0 and is the producer's bytes with
    // only the base offset and partition leader epoch (outside the CRC) filled in.
    assert_eq!(records.len(), first.len() + batch(&["r3"]).len());
    assert_eq!(
        &records[16..first.len()],
        &first[16..],
        "the same batch bytes"
    );
    assert_eq!(&records[..8], &0i64.to_be_bytes());

    // At the end of the log, after a long poll: empty records, not null.
    let started = std::time::Instant::now();
    let ResponseKind::Fetch(resp) = raw.call(ApiKey::Fetch, 11, fetch_req("f", 4, 300)) else {
        panic!()
    };
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(250),
        "waited for data"
    );
    let p = &resp.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    assert_eq!(p.records.as_deref(), Some(&[][..]), "empty, never null");

    // Past the end: OFFSET_OUT_OF_RANGE.
    let ResponseKind::Fetch(resp) = raw.call(ApiKey::Fetch, 11, fetch_req("f", 99, 0)) else {
        panic!()
    };
    assert_eq!(resp.responses[0].partitions[0].error_code, 1);

    // ListOffsets: -1 latest, -2 earliest, -3 max timestamp, and by time.
    for (version, ts, want_offset) in [
        (2, -1, 4),
        (2, -2, 0),
        (7, -3, 0),
        (2, 1_000, 0),
        (2, 5_000, -1),
    ] {
        let req = ListOffsetsRequest::default()
            .with_replica_id(kafka_protocol::messages::BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(topic("f"))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(ts)])]);
        let ResponseKind::ListOffsets(resp) =
            raw.call(ApiKey::ListOffsets, version, RequestKind::ListOffsets(req))
        else {
            panic!()
        };
        let p = &resp.topics[0].partitions[0];
        assert_eq!((p.error_code, p.offset), (0, want_offset), "timestamp {ts}");
    }
}

#[test]
fn idle_connections_are_closed_after_connections_max_idle_ms() {
    let broker = Broker::start("wire-idle", &["connections.max.idle.ms=300"]);
    let mut idle = Raw::connect(&broker.addr);
    let started = std::time::Instant::now();
    assert!(idle.is_closed(), "closed by the broker");
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(250)
            && waited < std::time::Duration::from_secs(5),
        "closed after {waited:?}"
    );
    still_serving(&broker);
}

/// Unmounts a tmpfs when dropped, even when the test fails.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A full disk: the write that does not fit gets KAFKA_STORAGE_ERROR (never an ack), the
/// partition goes offline (produce and fetch refused, metadata says so) while the broker
/// keeps serving, and after a restart on the same data every acknowledged batch is there,
/// byte for byte. Needs root to mount a small tmpfs; skipped (and said so) without it.
#[test]
fn a_full_disk_refuses_writes_loses_no_acknowledged_batch_and_keeps_serving() {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    if !root {
        eprintln!("SKIPPED: mounting a small tmpfs needs root");
        return;
    }
    let base = std::env::temp_dir().join(format!("eddy-test-{}-full-disk", std::process::id()));
    let small = base.join("small");
    std::fs::create_dir_all(&small).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=320k", "tmpfs"])
        .arg(&small)
        .status()
        .unwrap();
    assert!(mounted.success(), "mount a tmpfs");
    let mount = Mount(small.clone());
    let dirs = format!("log.dirs={}", small.display());
    let mut broker = Broker::start("full-disk", &[&dirs]);
    let mut raw = Raw::connect(&broker.addr);
    create(&mut raw, "full", 1);
    let payload = "x".repeat(8 * 1024);
    let mut acked = Vec::new();
    let mut refused = None;
    for i in 0..200 {
        let b = batch(&[&format!("{i:04}{payload}")]);
        match produce(&mut raw, "full", 0, b.clone()) {
            (0, offset) => acked.push((offset, b)),
            (code, _) => {
                refused = Some(code);
                break;
            }
        }
    }
    assert_eq!(
        refused,
        Some(56),
        "KAFKA_STORAGE_ERROR once the disk is full"
    );
    assert!(acked.len() > 10, "{} batches fit", acked.len());
    // Offline from now on; everyone else is still served.
    assert_eq!(produce(&mut raw, "full", 0, batch(&["more"])).0, 56);
    let ResponseKind::Fetch(resp) = raw.call(ApiKey::Fetch, 11, fetch_req("full", 0, 0)) else {
        panic!()
    };
    assert_eq!(resp.responses[0].partitions[0].error_code, 56);
    still_serving(&broker);

    // Restart on a copy of the data on a roomy disk: every acknowledged batch is there.
    broker.kill();
    let roomy = base.join("roomy");
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(&small)
        .arg(&roomy)
        .status()
        .unwrap();
    assert!(copied.success());
    drop(mount);
    let dirs = format!("log.dirs={}", roomy.display());
    let broker = Broker::start("full-disk-after", &[&dirs]);
    let mut raw = Raw::connect(&broker.addr);
    let mut next = 0i64;
    let mut got = Vec::new();
    loop {
        let ResponseKind::Fetch(resp) = raw.call(ApiKey::Fetch, 11, fetch_req("full", next, 0))
        else {
            panic!()
        };
        let p = &resp.responses[0].partitions[0];
        assert_eq!(p.error_code, 0);
        let records = p.records.clone().unwrap_or_default();
        if records.is_empty() {
            break;
        }
        let scan = eddy_core::batch::scan(&records);
        for r in scan.batches {
            got.push(records.slice(r));
            next += 1;
        }
    }
    assert_eq!(got.len(), acked.len(), "exactly the acknowledged batches");
    for (b, (offset, sent)) in got.iter().zip(&acked) {
        assert_eq!(&b[..8], &offset.to_be_bytes());
        assert_eq!(&b[16..], &sent[16..], "batch at {offset} intact");
    }
    let _ = std::fs::remove_dir_all(base);
}

fn idempotent(producer_id: i64, epoch: i16, sequence: i32, value: &str) -> Bytes {
    let mut b = eddy_core::batch::BatchBuilder::idempotent(producer_id, epoch, sequence);
    b.push(eddy_core::batch::NewRecord {
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        ..Default::default()
    });
    b.build()
}

/// KAFKA-COMPAT item 6: a retried batch within the last five is a duplicate answered with
/// its original offset and not stored twice; a gap in sequences is
/// OUT_OF_ORDER_SEQUENCE_NUMBER; a producer the broker has never seen may start at any
/// sequence.
#[test]
fn idempotent_producers_are_deduplicated_within_five_batches() {
    let broker = Broker::start("wire-idempotence", &[]);
    let mut raw = Raw::connect(&broker.addr);
    create(&mut raw, "idem", 1);
    for seq in 0..6 {
        assert_eq!(
            produce(
                &mut raw,
                "idem",
                0,
                idempotent(7, 0, seq, &format!("v{seq}"))
            ),
            (0, seq as i64)
        );
    }
    // Batches 1..=5 are the last five: a retry of 3 is the original, at offset 3.
    assert_eq!(
        produce(&mut raw, "idem", 0, idempotent(7, 0, 3, "v3")),
        (0, 3)
    );
    // A gap.
    assert_eq!(
        produce(&mut raw, "idem", 0, idempotent(7, 0, 9, "v9")).0,
        45,
        "OUT_OF_ORDER_SEQUENCE_NUMBER"
    );
    // A new producer starting mid-way is accepted.
    assert_eq!(
        produce(&mut raw, "idem", 0, idempotent(8, 0, 1000, "w")),
        (0, 6)
    );
    // Nothing was stored twice.
    let ResponseKind::Fetch(resp) = raw.call(ApiKey::Fetch, 11, fetch_req("idem", 0, 0)) else {
        panic!()
    };
    assert_eq!(resp.responses[0].partitions[0].high_watermark, 7);
}

/// Every API and version Eddy serves, fed its default request and then thousands of
/// byte-mutated copies of it, over a few connections: whatever each gets (an answer or a
/// closed connection), the broker must still answer afterwards. A panic in the node would
/// leave it deaf; a stuck connection would leave this test waiting on its timeout.
#[test]
fn mutated_requests_of_every_served_api_never_take_the_broker_down() {
    use kafka_protocol::messages::RequestHeader;
    use kafka_protocol::protocol::Encodable;
    let broker = Broker::start("wire-mutations", &["group.initial.rebalance.delay.ms=0"]);
    let mut raw = Raw::connect(&broker.addr);
    create(&mut raw, "m", 2);
    // A fixed-seed xorshift: the same mutations every run.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let served: Vec<(ApiKey, i16, i16)> = eddy_net::wire::SUPPORTED
        .iter()
        .filter(|(key, _, _)| *key != ApiKey::ApiVersions)
        .map(|&(key, _, _)| {
            let (min, max) = eddy_net::wire::decoded_versions(key).expect("served");
            (key, min, max)
        })
        .collect();
    let mut frames = 0;
    for (key, min, max) in served {
        for version in min..=max {
            let header = RequestHeader::default()
                .with_request_api_key(key as i16)
                .with_request_api_version(version)
                .with_correlation_id(1)
                .with_client_id(Some(StrBytes::from_static_str("mutant")));
            let mut clean = BytesMut::new();
            header
                .encode(&mut clean, key.request_header_version(version))
                .unwrap();
            let header_len = clean.len();
            let body = request_default(key);
            body.encode(&mut clean, version).unwrap();
            for round in 0..40 {
                let mut frame = clean.clone();
                if round > 0 && frame.len() > header_len {
                    for _ in 0..(1 + next() % 4) {
                        let at = header_len + (next() as usize) % (frame.len() - header_len);
                        frame[at] = next() as u8;
                    }
                }
                let mut conn = Raw::connect(&broker.addr);
                conn.stream
                    .set_read_timeout(Some(std::time::Duration::from_millis(300)))
                    .unwrap();
                conn.send_frame(&frame);
                let _ = conn.recv_raw(key, version);
                frames += 1;
            }
        }
    }
    assert!(frames > 1000, "{frames} frames sent");
    still_serving(&broker);
    // And the data path still works.
    assert_eq!(
        produce(&mut Raw::connect(&broker.addr), "m", 0, batch(&["after"])).0,
        0
    );
}

/// The crate's default request of each kind, the seed the mutations start from.
fn request_default(key: ApiKey) -> RequestKind {
    use kafka_protocol::messages as m;
    match key {
        ApiKey::Produce => produce_req(1, "m", 0, batch(&["seed"])),
        ApiKey::Fetch => fetch_req("m", 0, 10),
        ApiKey::ListOffsets => RequestKind::ListOffsets(m::ListOffsetsRequest::default()),
        ApiKey::Metadata => RequestKind::Metadata(MetadataRequest::default()),
        ApiKey::CreateTopics => RequestKind::CreateTopics(m::CreateTopicsRequest::default()),
        ApiKey::InitProducerId => RequestKind::InitProducerId(m::InitProducerIdRequest::default()),
        ApiKey::OffsetForLeaderEpoch => {
            RequestKind::OffsetForLeaderEpoch(m::OffsetForLeaderEpochRequest::default())
        }
        ApiKey::DeleteTopics => RequestKind::DeleteTopics(m::DeleteTopicsRequest::default()),
        ApiKey::CreatePartitions => {
            RequestKind::CreatePartitions(m::CreatePartitionsRequest::default())
        }
        ApiKey::DescribeConfigs => {
            RequestKind::DescribeConfigs(m::DescribeConfigsRequest::default())
        }
        ApiKey::DescribeCluster => {
            RequestKind::DescribeCluster(m::DescribeClusterRequest::default())
        }
        ApiKey::IncrementalAlterConfigs => {
            RequestKind::IncrementalAlterConfigs(m::IncrementalAlterConfigsRequest::default())
        }
        ApiKey::FindCoordinator => {
            RequestKind::FindCoordinator(m::FindCoordinatorRequest::default())
        }
        ApiKey::JoinGroup => RequestKind::JoinGroup(m::JoinGroupRequest::default()),
        ApiKey::SyncGroup => RequestKind::SyncGroup(m::SyncGroupRequest::default()),
        ApiKey::Heartbeat => RequestKind::Heartbeat(m::HeartbeatRequest::default()),
        ApiKey::LeaveGroup => RequestKind::LeaveGroup(m::LeaveGroupRequest::default()),
        ApiKey::OffsetCommit => RequestKind::OffsetCommit(m::OffsetCommitRequest::default()),
        ApiKey::OffsetFetch => RequestKind::OffsetFetch(m::OffsetFetchRequest::default()),
        ApiKey::ListGroups => RequestKind::ListGroups(m::ListGroupsRequest::default()),
        ApiKey::DescribeGroups => RequestKind::DescribeGroups(m::DescribeGroupsRequest::default()),
        ApiKey::DeleteGroups => RequestKind::DeleteGroups(m::DeleteGroupsRequest::default()),
        other => panic!("{other:?} is not served"),
    }
}

/// Metadata v10+ carries topic ids: every topic has one, the same on every request, a
/// request by id (v12, no name) finds its topic, and an unknown id gets
/// UNKNOWN_TOPIC_ID (100) with no name, as Kafka answers.
#[test]
fn metadata_reports_topic_ids_and_finds_topics_by_id() {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    let broker = Broker::start("topic-ids", &[]);
    let mut raw = Raw::connect(&broker.addr);
    create(&mut raw, "first", 1);
    create(&mut raw, "second", 2);
    let by_name = |raw: &mut Raw, name: &str| {
        let req = MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic(name))),
        ]));
        let ResponseKind::Metadata(resp) =
            raw.call(ApiKey::Metadata, 12, RequestKind::Metadata(req))
        else {
            panic!("Metadata answer");
        };
        assert_eq!(resp.topics[0].error_code, 0, "{resp:?}");
        resp.topics[0].topic_id
    };
    let first = by_name(&mut raw, "first");
    let second = by_name(&mut raw, "second");
    assert!(!first.is_nil() && !second.is_nil() && first != second);
    assert_eq!(by_name(&mut raw, "first"), first, "stable");
    let by_id = |raw: &mut Raw, id: uuid::Uuid| {
        let req =
            MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
                .with_name(None)
                .with_topic_id(id)]));
        let ResponseKind::Metadata(resp) =
            raw.call(ApiKey::Metadata, 12, RequestKind::Metadata(req))
        else {
            panic!("Metadata answer");
        };
        resp.topics.into_iter().next().expect("one topic")
    };
    let found = by_id(&mut raw, second);
    assert_eq!(found.error_code, 0);
    assert_eq!(
        found.name.map(|n| n.0.to_string()).as_deref(),
        Some("second")
    );
    assert_eq!(found.partitions.len(), 2);
    for unknown in [
        uuid::Uuid::from_u128(7),
        uuid::Uuid::from_u128(second.as_u128() + 100),
    ] {
        let missing = by_id(&mut raw, unknown);
        assert_eq!(missing.error_code, 100, "UNKNOWN_TOPIC_ID");
        assert_eq!(missing.name, None);
        assert_eq!(missing.topic_id, unknown);
    }
    // Versions before 10 have no ids on the wire, and still work.
    let ResponseKind::Metadata(old) = raw.call(
        ApiKey::Metadata,
        9,
        RequestKind::Metadata(MetadataRequest::default().with_topics(None)),
    ) else {
        panic!("Metadata answer");
    };
    assert_eq!(old.topics.len(), 2);
    broker.assert_no_panic();
}
