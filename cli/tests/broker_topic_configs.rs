//! Per-topic configs through kafka-python's admin client: CreateTopics with configs,
//! IncrementalAlterConfigs, DescribeConfigs showing a topic's own values, and the broker
//! honouring them (a topic's own `segment.bytes` and `retention.ms` trim its log).

mod support;

use support::{have_kafka_python, python, Broker};

#[test]
fn topic_configs_are_set_described_honoured_and_refused_when_not_per_topic() {
    if !have_kafka_python() {
        return;
    }
    let broker = Broker::start("topic-configs", &["log.retention.check.interval.ms=200"]);
    let script = r#"
import sys, time
from kafka import KafkaProducer, KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic, ConfigResource, ConfigResourceType
b = sys.argv[1]
a = KafkaAdminClient(bootstrap_servers=b)
a.create_topics([NewTopic("short", 1, 1, topic_configs={"segment.bytes": "1024"})])
p = KafkaProducer(bootstrap_servers=b, acks="all", linger_ms=0)
for i in range(200):
    p.send("short", value=("x" * 90 + str(i)).encode()).get(timeout=10)
p.close()
def described():
    r = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "short")])
    return str(r)
print("before", "segment.bytes" in described())
c = KafkaConsumer(bootstrap_servers=b)
tp = TopicPartition("short", 0)
print("earliest-before", c.beginning_offsets([tp])[tp])
r = a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, "short", configs={"retention.ms": "1"})], raise_on_unknown=False)
print("alter", r)
deadline = time.time() + 20
while time.time() < deadline and c.beginning_offsets([tp])[tp] == 0:
    time.sleep(0.2)
print("earliest-after", c.beginning_offsets([tp])[tp])
d = described()
print("described", "retention.ms" in d, "'1'" in d or "value='1'" in d or ", 1," in d)
try:
    r = a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, "short", configs={"max.message.bytes": "100"})], raise_on_unknown=False)
    print("refused", r)
except Exception as e:
    print("refused", repr(e))
"#;
    let out = python(script, &[&broker.addr]);
    eprintln!("{out}");
    let line = |prefix: &str| {
        out.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in:\n{out}"))
            .to_string()
    };
    assert_eq!(line("earliest-before"), "earliest-before 0", "{out}");
    let after: u64 = line("earliest-after ")
        .trim_start_matches("earliest-after ")
        .parse()
        .expect("a number");
    assert!(
        after > 0,
        "the topic's own retention.ms removed old segments (its segment.bytes rolled them):\n{out}"
    );
    assert!(
        line("refused").contains("InvalidConfig") || line("refused").contains("40"),
        "a config Eddy does not honour per topic is refused with INVALID_CONFIG:\n{out}"
    );
    broker.assert_no_panic();
}
