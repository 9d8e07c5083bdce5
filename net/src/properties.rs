//! A reader for the Java `.properties` format, as Kafka reads `server.properties`.
//!
//! Kafka loads its config with `java.util.Properties.load`, so an Eddy config file means
//! what it would mean to Kafka: `#` and `!` comment lines; `key=value`, `key: value` or
//! `key value`; leading whitespace ignored; a line ending in an odd number of
//! backslashes continues on the next, whose leading whitespace is dropped; and the
//! escapes `\t \n \r \f \uXXXX`, with a backslash before any other character standing
//! for that character (`\\ \= \: \# \ `). Like Java, values keep their trailing
//! whitespace (the config layer trims them) and a repeated key is returned each time
//! (the last one wins when the config applies them in order). The parser takes text;
//! decoding the file's bytes is the caller's job (see [`crate::load_broker_config`]).

/// One `key = value` entry, unescaped, with the line its key starts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Property {
    /// 1-based line number of the first line of the entry.
    pub line: usize,
    pub key: String,
    pub value: String,
}

/// Text that is not valid `.properties` syntax.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line number where the problem is.
    pub line: usize,
    pub message: String,
}

/// A character of a logical line, with the 1-based natural line it came from, so that
/// an error in a continuation line names that line.
type Tagged = (char, usize);

/// Java's whitespace between key and value and at the start of a line.
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0c')
}

/// Parses `.properties` text into its entries, in file order.
pub fn parse(text: &str) -> Result<Vec<Property>, ParseError> {
    let lines = natural_lines(text);
    let mut properties = Vec::new();
    let mut next = 0;
    while next < lines.len() {
        let first_line = next + 1;
        let first = lines[next].trim_start_matches(is_blank);
        next += 1;
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        let mut logical: Vec<Tagged> = first.chars().map(|c| (c, first_line)).collect();
        while ends_in_continuation(&logical) {
            logical.pop();
            let Some(line) = lines.get(next) else { break };
            next += 1;
            logical.extend(line.trim_start_matches(is_blank).chars().map(|c| (c, next)));
        }
        let (key, value) = split_key_value(&logical);
        properties.push(Property {
            line: first_line,
            key: unescape(key)?,
            value: unescape(value)?,
        });
    }
    Ok(properties)
}

/// Splits on `\r\n`, `\n` or `\r`, as Java's `LineReader` does.
fn natural_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest.find(['\r', '\n']).unwrap_or(rest.len());
        lines.push(&rest[..end]);
        rest = &rest[end..];
        rest = rest
            .strip_prefix("\r\n")
            .or_else(|| rest.strip_prefix('\r'))
            .or_else(|| rest.strip_prefix('\n'))
            .unwrap_or(rest);
    }
    lines
}

/// True when the line ends in an odd number of backslashes: the last one is not itself
/// escaped, so it joins the next line.
fn ends_in_continuation(line: &[Tagged]) -> bool {
    line.iter().rev().take_while(|(c, _)| *c == '\\').count() % 2 == 1
}

/// Java's rule: the key ends at the first unescaped `=`, `:` or blank; then blanks, at
/// most one `=` or `:` (if the key ended at a blank), and more blanks are skipped.
fn split_key_value(line: &[Tagged]) -> (&[Tagged], &[Tagged]) {
    let mut escaped = false;
    let mut key_end = line.len();
    let mut has_separator = false;
    for (i, (c, _)) in line.iter().enumerate() {
        if !escaped && (*c == '=' || *c == ':' || is_blank(*c)) {
            key_end = i;
            has_separator = !is_blank(*c);
            break;
        }
        escaped = *c == '\\' && !escaped;
    }
    let mut value_start = (key_end + 1).min(line.len());
    while let Some((c, _)) = line.get(value_start) {
        if is_blank(*c) {
            value_start += 1;
        } else if !has_separator && (*c == '=' || *c == ':') {
            has_separator = true;
            value_start += 1;
        } else {
            break;
        }
    }
    (&line[..key_end], &line[value_start..])
}

/// Resolves backslash escapes. `\uXXXX` is a UTF-16 code unit, as in Java: a character
/// outside the Basic Multilingual Plane is written as a surrogate pair of escapes.
fn unescape(chars: &[Tagged]) -> Result<String, ParseError> {
    let mut out = String::with_capacity(chars.len());
    let mut rest = chars;
    while let Some(((c, line), tail)) = rest.split_first() {
        rest = tail;
        if *c != '\\' {
            out.push(*c);
            continue;
        }
        let Some(((escaped, _), tail)) = rest.split_first() else {
            // A lone backslash at the very end of the file: Java drops it too.
            break;
        };
        rest = tail;
        match escaped {
            't' => out.push('\t'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            'f' => out.push('\x0c'),
            'u' => {
                let unit = hex4(&mut rest, *line)?;
                out.push(code_point(unit, &mut rest, *line)?);
            }
            other => out.push(*other),
        }
    }
    Ok(out)
}

/// Completes a `\u` escape whose four hex digits gave `unit`, reading the low half of a
/// surrogate pair from `rest` when `unit` is the high half.
fn code_point(unit: u16, rest: &mut &[Tagged], line: usize) -> Result<char, ParseError> {
    let lone_surrogate = |unit: u16| ParseError {
        line,
        message: format!(
            "\\u{unit:04X} is half of a UTF-16 surrogate pair without its other half; \
             write the character itself, or both halves as \\uD83D\\uDE00 style escapes"
        ),
    };
    if let Some(c) = char::from_u32(u32::from(unit)) {
        return Ok(c);
    }
    let is_high = (0xD800..0xDC00).contains(&unit);
    let followed_by_escape = matches!(rest, [('\\', _), ('u', _), ..]);
    if !is_high || !followed_by_escape {
        return Err(lone_surrogate(unit));
    }
    *rest = &rest[2..];
    let low = hex4(rest, line)?;
    char::decode_utf16([unit, low])
        .next()
        .and_then(Result::ok)
        .ok_or_else(|| lone_surrogate(unit))
}

/// Reads the four hex digits of a `\u` escape from the front of `rest`.
fn hex4(rest: &mut &[Tagged], line: usize) -> Result<u16, ParseError> {
    let digits: String = rest.iter().take(4).map(|(c, _)| *c).collect();
    let valid = digits.len() == 4 && digits.chars().all(|c| c.is_ascii_hexdigit());
    if !valid {
        return Err(ParseError {
            line,
            message: format!(
                "malformed \\u escape \\u{digits}: \\u must be followed by four hex digits, \
                 such as \\u00e9; write \\\\u for a literal backslash and u"
            ),
        });
    }
    *rest = &rest[4..];
    Ok(u16::from_str_radix(&digits, 16).expect("checked to be four hex digits"))
}

/// The stock Kafka `server.properties` from the seed notes, verbatim (its Chinese
/// comments and trailing spaces included).
#[cfg(test)]
pub(crate) const SEED_SERVER_PROPERTIES: &str = r#"############################# Server Basics #############################

# broker代理的唯一标识，如果单机模式不用修改
broker.id=0

############################# Socket Server Settings #############################

# The address the socket server listens on. It will get the value returned from 
# java.net.InetAddress.getCanonicalHostName() if not configured.
#   FORMAT:
#     listeners = listener_name://host_name:port
#   EXAMPLE:
#     listeners = PLAINTEXT://your.host.name:9092
#listeners=PLAINTEXT://:9092

# Hostname and port the broker will advertise to producers and consumers. If not set, 
# it uses the value for "listeners" if configured.  Otherwise, it will use the value
# returned from java.net.InetAddress.getCanonicalHostName().
#advertised.listeners=PLAINTEXT://your.host.name:9092

# Maps listener names to security protocols, the default is for them to be the same. See the config documentation for more details
#listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL

# The number of threads that the server uses for receiving requests from the network and sending responses to the network
num.network.threads=3

# The number of threads that the server uses for processing requests, which may include disk I/O
num.io.threads=8

# The send buffer (SO_SNDBUF) used by the socket server
socket.send.buffer.bytes=102400

# The receive buffer (SO_RCVBUF) used by the socket server
socket.receive.buffer.bytes=102400

# The maximum size of a request that the socket server will accept (protection against OOM)
socket.request.max.bytes=104857600


############################# Log Basics #############################

# kafka的topic、partition数据（一般修改这个就行，也可以不修改）
log.dirs=/tmp/kafka-logs

# 默认分区数量
num.partitions=1

# The number of threads per data directory to be used for log recovery at startup and flushing at shutdown.
# This value is recommended to be increased for installations with data dirs located in RAID array.
num.recovery.threads.per.data.dir=1

############################# Internal Topic Settings  #############################
# The replication factor for the group metadata internal topics "__consumer_offsets" and "__transaction_state"
# For anything other than development testing, a value greater than 1 is recommended for to ensure availability such as 3.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1

############################# Log Flush Policy #############################

# Messages are immediately written to the filesystem but by default we only fsync() to sync
# the OS cache lazily. The following configurations control the flush of data to disk.
# There are a few important trade-offs here:
#    1. Durability: Unflushed data may be lost if you are not using replication.
#    2. Latency: Very large flush intervals may lead to latency spikes when the flush does occur as there will be a lot of data to flush.
#    3. Throughput: The flush is generally the most expensive operation, and a small flush interval may lead to excessive seeks.
# The settings below allow one to configure the flush policy to flush data after a period of time or
# every N messages (or both). This can be done globally and overridden on a per-topic basis.

# The number of messages to accept before forcing a flush of data to disk
#log.flush.interval.messages=10000

# The maximum amount of time a message can sit in a log before we force a flush
#log.flush.interval.ms=1000

############################# Log Retention Policy #############################

# The following configurations control the disposal of log segments. The policy can
# be set to delete segments after a period of time, or after a given size has accumulated.
# A segment will be deleted whenever *either* of these criteria are met. Deletion always happens
# from the end of the log.

# 日志文件保留时间
log.retention.hours=168

# A size-based retention policy for logs. Segments are pruned from the log unless the remaining
# segments drop below log.retention.bytes. Functions independently of log.retention.hours.
#log.retention.bytes=1073741824

# The maximum size of a log segment file. When this size is reached a new log segment will be created.
log.segment.bytes=1073741824

# The interval at which log segments are checked to see if they can be deleted according
# to the retention policies
log.retention.check.interval.ms=300000

############################# Zookeeper #############################

# 如果是远程zookeeper需要修改
zookeeper.connect=localhost:2181

# 连接超时等待时间
zookeeper.connection.timeout.ms=6000


############################# Group Coordinator Settings #############################

# The following configuration specifies the time, in milliseconds, that the GroupCoordinator will delay the initial consumer rebalance.
# The rebalance will be further delayed by the value of group.initial.rebalance.delay.ms as new members join the group, up to a maximum of max.poll.interval.ms.
# The default value for this is 3 seconds.
# We override this to 0 here as it makes for a better out-of-the-box experience for development and testing.
# However, in production environments the default value of 3 seconds is more suitable as this will help to avoid unnecessary, and potentially expensive, rebalances during application startup.
group.initial.rebalance.delay.ms=0
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(text: &str) -> Vec<(usize, String, String)> {
        parse(text)
            .expect("valid properties")
            .into_iter()
            .map(|p| (p.line, p.key, p.value))
            .collect()
    }

    fn entry(line: usize, key: &str, value: &str) -> (usize, String, String) {
        (line, key.to_string(), value.to_string())
    }

    #[test]
    fn each_separator_form_gives_key_and_value() {
        let text = "a=1\nb: 2\nc 3\nd = 4\ne\t:\t5\nf   =   6   \ng\nh=\ni = = 7\nj::8\n";
        assert_eq!(
            entries(text),
            vec![
                entry(1, "a", "1"),
                entry(2, "b", "2"),
                entry(3, "c", "3"),
                entry(4, "d", "4"),
                entry(5, "e", "5"),
                entry(6, "f", "6   "),
                entry(7, "g", ""),
                entry(8, "h", ""),
                entry(9, "i", "= 7"),
                entry(10, "j", ":8"),
            ]
        );
    }

    #[test]
    fn comments_and_blank_lines_are_skipped_and_leading_whitespace_ignored() {
        let text = "# comment\n! also a comment\n   # indented comment\n\n \t \n  key = v # not a comment\n";
        assert_eq!(entries(text), vec![entry(6, "key", "v # not a comment")]);
    }

    #[test]
    fn trailing_backslash_continues_the_line_without_its_leading_whitespace() {
        let text = "fruits = apple, \\\n         banana, \\\n    pear\nnext=1\n";
        assert_eq!(
            entries(text),
            vec![
                entry(1, "fruits", "apple, banana, pear"),
                entry(4, "next", "1"),
            ]
        );
        // A continuation line starting with '#' is part of the value, not a comment.
        assert_eq!(entries("a=x\\\n  #y"), vec![entry(1, "a", "x#y")]);
        // An escaped backslash at the end does not continue.
        assert_eq!(
            entries("a=x\\\\\nb=y"),
            vec![entry(1, "a", "x\\"), entry(2, "b", "y")]
        );
        // A blank continuation line ends the entry; a backslash at end of file is dropped.
        assert_eq!(
            entries("a=x\\\n\nb=y\\"),
            vec![entry(1, "a", "x"), entry(3, "b", "y")]
        );
        // A key may continue too.
        assert_eq!(entries("lo\\\n  ng=v"), vec![entry(1, "long", "v")]);
    }

    #[test]
    fn escapes_are_resolved_in_keys_and_values() {
        let text = "tab=a\\tb\nnl=a\\nb\nslash=a\\\\b\nkey\\=with\\:seps\\ and\\ space=v\\=1\\:2\n\
                    uni=caf\\u00e9 \\u00E9\nother=\\q\\#\nemoji=\\uD83D\\uDE00\n";
        assert_eq!(
            entries(text),
            vec![
                entry(1, "tab", "a\tb"),
                entry(2, "nl", "a\nb"),
                entry(3, "slash", "a\\b"),
                entry(4, "key=with:seps and space", "v=1:2"),
                entry(5, "uni", "café é"),
                entry(6, "other", "q#"),
                entry(7, "emoji", "😀"),
            ]
        );
    }

    #[test]
    fn bad_unicode_escape_names_its_line() {
        let e = parse("ok=1\n# c\nbad=\\u12G4\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(
            e.to_string()
                .starts_with("line 3: malformed \\u escape \\u12G4"),
            "{e}"
        );
        let e = parse("short=\\u12").unwrap_err();
        assert_eq!(e.line, 1);
        // In a continuation, the line of the escape itself is named.
        let e = parse("a=x\\\n  y\\u00\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        let e = parse("lone=\\uDE00").unwrap_err();
        assert!(e.to_string().contains("surrogate"), "{e}");
        let e = parse("lone=\\uD83Dx").unwrap_err();
        assert!(e.to_string().contains("surrogate"), "{e}");
    }

    #[test]
    fn every_line_ending_counts_as_a_line() {
        assert_eq!(
            entries("a=1\r\nb=2\rc=3\n\r\nd=4"),
            vec![
                entry(1, "a", "1"),
                entry(2, "b", "2"),
                entry(3, "c", "3"),
                entry(5, "d", "4"),
            ]
        );
        assert_eq!(entries("a=1\\\r\n  2"), vec![entry(1, "a", "12")]);
        assert_eq!(entries(""), vec![]);
    }

    #[test]
    fn repeated_keys_are_all_returned_in_file_order() {
        assert_eq!(
            entries("a=1\na=2"),
            vec![entry(1, "a", "1"), entry(2, "a", "2")]
        );
    }

    #[test]
    fn seed_server_properties_parses_in_file_order() {
        let got = entries(SEED_SERVER_PROPERTIES);
        let expected = [
            (4, "broker.id", "0"),
            (25, "num.network.threads", "3"),
            (28, "num.io.threads", "8"),
            (31, "socket.send.buffer.bytes", "102400"),
            (34, "socket.receive.buffer.bytes", "102400"),
            (37, "socket.request.max.bytes", "104857600"),
            (43, "log.dirs", "/tmp/kafka-logs"),
            (46, "num.partitions", "1"),
            (50, "num.recovery.threads.per.data.dir", "1"),
            (55, "offsets.topic.replication.factor", "1"),
            (56, "transaction.state.log.replication.factor", "1"),
            (57, "transaction.state.log.min.isr", "1"),
            (84, "log.retention.hours", "168"),
            (91, "log.segment.bytes", "1073741824"),
            (95, "log.retention.check.interval.ms", "300000"),
            (100, "zookeeper.connect", "localhost:2181"),
            (103, "zookeeper.connection.timeout.ms", "6000"),
            (113, "group.initial.rebalance.delay.ms", "0"),
        ];
        let expected: Vec<_> = expected.iter().map(|(l, k, v)| entry(*l, k, v)).collect();
        assert_eq!(got, expected);
    }
}
