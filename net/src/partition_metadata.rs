//! `partition.metadata`, the file in each partition's directory that says which topic it
//! belongs to by id, in Kafka's format:
//!
//! ```text
//! version: 0
//! topic_id: <the topic id in Kafka's base64 text form>
//! ```
//!
//! A topic deleted while a broker was down and created again under the same name gets a
//! new id: the broker recognises its old directory as the earlier topic's and deletes it
//! instead of serving its records as the new topic's.

use crate::disk as fs;
use std::path::Path;

use eddy_core::controller::TopicId;

use crate::storage::{io_err, StorageError};
use crate::topic_id;

const FILE: &str = "partition.metadata";

/// What the directory's file says: `None` when there is no file (a directory from
/// before topic ids, or one created before its topic's id was known) or it is not one
/// of Kafka's (then it is rewritten once the id is known).
pub(crate) fn read(dir: &Path) -> Option<TopicId> {
    let text = fs::read_to_string(dir.join(FILE)).ok()?;
    let mut lines = text.lines().map(|l| l.split_once(':'));
    match lines.next()? {
        Some((k, v)) if k.trim() == "version" && v.trim() == "0" => {}
        _ => return None,
    }
    match lines.next()? {
        Some((k, v)) if k.trim() == "topic_id" => {
            topic_id::from_uuid(topic_id::from_base64(v.trim())?)
        }
        _ => None,
    }
}

/// Writes the file (through a synced temporary file and a rename, so a crash leaves
/// the old file or the new one).
pub(crate) fn write(dir: &Path, id: TopicId) -> Result<(), StorageError> {
    let text = format!(
        "version: 0\ntopic_id: {}\n",
        topic_id::to_base64(topic_id::to_uuid(id))
    );
    let path = dir.join(FILE);
    fs::write_atomically(&path, text.as_bytes()).map_err(io_err("write", &path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_ids_read_back_and_anything_else_reads_as_none() {
        let dir = std::env::temp_dir().join(format!("eddy-pm-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        assert_eq!(read(&dir), None, "no file");
        write(&dir, TopicId(42)).unwrap();
        assert_eq!(read(&dir), Some(TopicId(42)));
        let text = fs::read_to_string(dir.join(FILE)).unwrap();
        assert!(
            text.starts_with("version: 0\ntopic_id: RUREWQAAAAAAAAAAAAAAKg"),
            "{text}"
        );
        for bad in [
            "",
            "garbage",
            "version: 1\ntopic_id: RUREWQAAAAAAAAAAAAAAKg\n",
            "version: 0\n",
            "version: 0\ntopic_id: not-base64\n",
            // A Kafka topic's id (not Eddy's): no topic of this cluster.
            "version: 0\ntopic_id: AAAAAAAAAAAAAAAAAAAAAQ\n",
        ] {
            fs::write(dir.join(FILE), bad).unwrap();
            assert_eq!(read(&dir), None, "{bad:?}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
