//! The `recovery-point-offset-checkpoint` file of each log dir, in Kafka's format
//! (`OffsetCheckpointFile`): a version line (`0`), a count line, then one
//! `<topic> <partition> <offset>` line per partition.
//!
//! A partition's recovery point is the offset below which everything is known to be on
//! disk (synced): on start, batches below it are only walked (their headers read), not
//! CRC-checked, so a restart after a clean shutdown checks nothing but the log's end. The
//! file is written whole to a temporary file, synced and renamed over the old one, so a
//! crash leaves either the old checkpoint or the new one. A file that does not parse is
//! ignored (every partition is then scanned in full): it can cost time, never data.

use crate::disk::{self as fs, File};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use eddy_core::types::TopicPartition;

use super::{io_err, StorageError};

/// The file's name in each log dir, as Kafka names it.
pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";

/// The only version of the format.
const VERSION: u32 = 0;

/// Reads a log dir's recovery points. A missing file means none; a malformed one is
/// reported in the log and treated as none.
pub fn read_recovery_points(log_dir: &Path) -> BTreeMap<TopicPartition, u64> {
    let path = log_dir.join(RECOVERY_POINT_CHECKPOINT);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return BTreeMap::new(),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot read the recovery point checkpoint; every partition in this log dir is checked in full");
            return BTreeMap::new();
        }
    };
    match parse(&text) {
        Ok(points) => points,
        Err(why) => {
            tracing::warn!(file = %path.display(), why, "ignoring a malformed recovery point checkpoint; every partition in this log dir is checked in full");
            BTreeMap::new()
        }
    }
}

/// Parses the checkpoint format; the error says what was wrong.
pub(crate) fn parse(text: &str) -> Result<BTreeMap<TopicPartition, u64>, &'static str> {
    let mut lines = text.lines();
    match lines.next().map(str::trim) {
        Some(v) if v.parse::<u32>() == Ok(VERSION) => {}
        _ => return Err("the first line is not version 0"),
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or("the second line is not an entry count")?;
    let mut points = BTreeMap::new();
    for _ in 0..count {
        let line = lines.next().ok_or("fewer entries than the count says")?;
        let mut fields = line.split(' ');
        let (Some(topic), Some(partition), Some(offset), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err("an entry is not `<topic> <partition> <offset>`");
        };
        let partition: u32 = partition
            .parse()
            .map_err(|_| "a partition is not a number")?;
        let offset: u64 = offset.parse().map_err(|_| "an offset is not a number")?;
        if topic.is_empty() {
            return Err("an entry has an empty topic");
        }
        points.insert(TopicPartition::new(topic, partition), offset);
    }
    if lines.any(|l| !l.trim().is_empty()) {
        return Err("more entries than the count says");
    }
    Ok(points)
}

fn format(points: &BTreeMap<TopicPartition, u64>) -> String {
    let mut out = format!("{VERSION}\n{}\n", points.len());
    for (tp, offset) in points {
        out.push_str(&format!("{} {} {offset}\n", tp.topic, tp.partition));
    }
    out
}

/// Replaces a log dir's checkpoint with `points`: written to a temporary file, synced,
/// renamed over the old file, and the directory synced. Blocks.
pub fn write_recovery_points(
    log_dir: &Path,
    points: &BTreeMap<TopicPartition, u64>,
) -> Result<(), StorageError> {
    let path = log_dir.join(RECOVERY_POINT_CHECKPOINT);
    // A name of its own per write: a periodic write and the shutdown's may overlap, and
    // must not write into one file. The last rename wins; an older checkpoint is only
    // more cautious (a recovery point only grows, except on truncation).
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let n = WRITES.fetch_add(1, Ordering::Relaxed);
    let tmp = log_dir.join(format!("{RECOVERY_POINT_CHECKPOINT}.tmp{n}"));
    let written = (|| {
        let mut file = File::create(&tmp).map_err(io_err("create", &tmp))?;
        file.write_all(format(points).as_bytes())
            .map_err(io_err("write", &tmp))?;
        file.sync_all().map_err(io_err("sync", &tmp))?;
        fs::rename(&tmp, &path).map_err(io_err("rename", &tmp))
    })();
    if written.is_err() {
        // A full disk: leave the old checkpoint as it was, and no temporary file behind.
        let _ = fs::remove_file(&tmp);
    }
    written?;
    File::open(log_dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync directory", log_dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_round_trips_in_kafkas_format() {
        let dir = std::env::temp_dir().join(format!("eddy-checkpoint-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let points = BTreeMap::from([
            (TopicPartition::new("my-topic", 0), 42),
            (TopicPartition::new("other", 11), 0),
        ]);
        write_recovery_points(&dir, &points).unwrap();
        let text = fs::read_to_string(dir.join(RECOVERY_POINT_CHECKPOINT)).unwrap();
        assert_eq!(text, "0\n2\nmy-topic 0 42\nother 11 0\n");
        assert_eq!(read_recovery_points(&dir), points);
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_malformed_checkpoint_is_ignored_never_trusted_in_part() {
        for bad in [
            "",
            "1\n0\n",
            "0\n",
            "0\n2\nt 0 5\n",
            "0\n1\nt 0 5\nu 1 6\n",
            "0\n1\nt x 5\n",
            "0\n1\nt 0 -5\n",
            "0\n1\nt 0 5 extra\n",
            "\u{0}\u{ff}garbage",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse("0\n0\n"), Ok(BTreeMap::new()));
        let dir = std::env::temp_dir().join(format!("eddy-checkpoint-bad-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(RECOVERY_POINT_CHECKPOINT), b"0\n3\nt 0 1\n").unwrap();
        assert!(read_recovery_points(&dir).is_empty());
        assert!(read_recovery_points(&dir.join("missing")).is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }
}
