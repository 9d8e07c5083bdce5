//! The core's hot paths, measured with criterion (`cargo bench -p eddy-core`): appending
//! batches to a partition log, reading a fetch range, one acks=all produce carried to its
//! acknowledgement by two followers' fetches (the high watermark advancing across the
//! ISR), validating a batch header with its CRC-32C, and each assignor over 1,000
//! partitions and 100 members. Figures go in BENCHMARKS.md with the command; nothing
//! here asserts a time.

use std::collections::BTreeMap;
use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use eddy_core::batch::{self, BatchBuilder, NewRecord};
use eddy_core::group::{Assignor, Subscription};
use eddy_core::log::{PartitionLog, StoredBatch};
use eddy_core::message::{Acks, ClientRequest, ControllerMessage, Effect, Input, PeerMessage};
use eddy_core::metadata::PartitionState;
use eddy_core::node::{Node, NodeConfig};
use eddy_core::types::{Epoch, NodeId, Offset, TopicPartition};

/// A batch of `records` records of `value_bytes` each, as a producer sends it.
fn produced(records: usize, value_bytes: usize) -> Bytes {
    let mut b = BatchBuilder::new();
    for i in 0..records {
        b.push(NewRecord {
            value: Some(Bytes::from(vec![b'x'; value_bytes])),
            timestamp_ms: i as i64,
            ..NewRecord::default()
        });
    }
    b.build()
}

/// The same batch as the leader stores it at `base`.
fn stored(bytes: &Bytes, base: u64) -> StoredBatch {
    let mut b = BytesMut::from(&bytes[..]);
    batch::set_base_offset(&mut b, base as i64);
    batch::set_partition_leader_epoch(&mut b, 0);
    StoredBatch::from_validated(b.freeze())
}

fn log_append_and_read(c: &mut Criterion) {
    // 16 records of 1 KiB: what a producer with linger sends.
    let one = produced(16, 1024);
    let mut g = c.benchmark_group("log");
    g.throughput(Throughput::Bytes(one.len() as u64 * 1000));
    g.bench_function("append 1000 batches of 16x1KiB", |b| {
        b.iter_batched(
            || {
                (0..1000u64)
                    .map(|i| stored(&one, i * 16))
                    .collect::<Vec<_>>()
            },
            |batches| {
                let mut log = PartitionLog::new(Offset(0));
                for s in batches {
                    log.append(s, 0);
                }
                black_box(log.log_end_offset())
            },
            BatchSize::LargeInput,
        )
    });
    let mut log = PartitionLog::new(Offset(0));
    for i in 0..1000u64 {
        log.append(stored(&one, i * 16), 0);
    }
    log.set_high_watermark(log.log_end_offset());
    g.throughput(Throughput::Bytes(1 << 20));
    g.bench_function("read 1 MiB from the middle", |b| {
        b.iter(|| black_box(log.read(Offset(8000), 1 << 20, Offset(16000))))
    });
    g.finish();
}

fn batch_validation(c: &mut Criterion) {
    let one = produced(16, 1024);
    let mut g = c.benchmark_group("batch");
    g.throughput(Throughput::Bytes(one.len() as u64));
    g.bench_function("validate 16x1KiB (header + CRC-32C)", |b| {
        b.iter(|| black_box(batch::validate(black_box(&one)).is_ok()))
    });
    g.finish();
}

/// One acks=all produce on a 3-replica leader, acknowledged once both followers fetched
/// past it: append, two follower fetches, HW advance, reply.
fn replicated_produce(c: &mut Criterion) {
    let tp = TopicPartition::new("bench", 0);
    let mut node = Node::new(NodeId(0), 1, NodeConfig::default(), Vec::new());
    let state = PartitionState {
        replicas: vec![NodeId(0), NodeId(1), NodeId(2)],
        leader: Some(NodeId(0)),
        leader_epoch: Epoch(1),
        leader_incarnation: Some(1),
        isr: vec![NodeId(0), NodeId(1), NodeId(2)],
        partition_epoch: 0,
    };
    node.handle(
        0,
        Input::Controller(ControllerMessage::PartitionStates(vec![(
            tp.clone(),
            state,
        )])),
    );
    let one = produced(16, 1024);
    let mut next_offset = 0u64;
    let mut token = 0u64;
    let mut fetch_id = 0u64;
    let mut g = c.benchmark_group("replica");
    g.throughput(Throughput::Bytes(one.len() as u64));
    g.bench_function("acks=all produce, 2 follower fetches, ack", |b| {
        b.iter(|| {
            token += 1;
            let out = node.handle(
                1,
                Input::Client {
                    token,
                    req: ClientRequest::Produce {
                        partition: tp.clone(),
                        acks: Acks::All,
                        timeout_ms: 30_000,
                        batch: one.clone(),
                    },
                },
            );
            black_box(out);
            next_offset += 16;
            let mut acked = false;
            for follower in [1u32, 2] {
                fetch_id += 1;
                let out = node.handle(
                    1,
                    Input::Peer {
                        from: NodeId(follower),
                        msg: PeerMessage::Fetch {
                            partition: tp.clone(),
                            current_leader_epoch: Epoch(1),
                            fetch_offset: Offset(next_offset),
                            max_bytes: 1 << 20,
                            fetch_id,
                            incarnation: 1,
                        },
                    },
                );
                acked |= out.iter().any(|e| matches!(e, Effect::Reply { .. }));
            }
            assert!(acked, "the produce is acknowledged once the ISR has it");
        })
    });
    g.finish();
}

fn assignors(c: &mut Criterion) {
    let topics: BTreeMap<String, u32> = (0..10).map(|t| (format!("topic-{t}"), 100)).collect();
    let members: Vec<Subscription> = (0..100)
        .map(|m| Subscription::new(format!("member-{m:03}"), topics.keys().cloned()))
        .collect();
    let mut g = c.benchmark_group("assignor");
    for assignor in Assignor::ALL {
        g.bench_function(
            format!("{} 1000 partitions 100 members", assignor.name()),
            |b| b.iter(|| black_box(assignor.assign(&members, &topics))),
        );
    }
    g.finish();
}

criterion_group!(
    benches,
    log_append_and_read,
    batch_validation,
    replicated_produce,
    assignors
);
criterion_main!(benches);
