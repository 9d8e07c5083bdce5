//! `meta.properties` in the first log dir: the cluster id and node id this data belongs
//! to, as Kafka keeps them. A data directory from another cluster or node is refused
//! rather than silently mixed in.

use crate::disk as fs;
use std::path::PathBuf;

use eddy_core::config::BrokerConfig;

use crate::storage::StorageError;

const FILE: &str = "meta.properties";

/// The cluster id stored beside the data, created on first start.
pub(crate) fn cluster_id(cfg: &BrokerConfig) -> Result<String, StorageError> {
    let dir = PathBuf::from(&cfg.log_dirs[0]);
    fs::create_dir_all(&dir).map_err(|source| StorageError::Io {
        op: "create log dir",
        path: dir.clone(),
        source,
    })?;
    let path = dir.join(FILE);
    let io = |op: &'static str| {
        let path = path.clone();
        move |source| StorageError::Io { op, path, source }
    };
    match fs::read_to_string(&path) {
        Ok(text) => {
            let get = |key: &str| {
                text.lines()
                    .filter_map(|l| l.split_once('='))
                    .find(|(k, _)| k.trim() == key)
                    .map(|(_, v)| v.trim().to_string())
            };
            if let Some(node) = get("node.id") {
                if node != cfg.node_id.0.to_string() {
                    return Err(StorageError::Io {
                        op: "check",
                        path,
                        source: std::io::Error::other(format!(
                            "the data belongs to node.id={node}, but this broker is node.id={}; point log.dirs elsewhere or fix node.id",
                            cfg.node_id.0
                        )),
                    });
                }
            }
            Ok(get("cluster.id").unwrap_or_else(|| "eddy".to_string()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = new_cluster_id();
            let text = format!(
                "# Written by eddy on first start.\nversion=1\ncluster.id={id}\nnode.id={}\n",
                cfg.node_id.0
            );
            // Synced before the broker goes on: a crash right after the first start
            // must not leave a torn file that fails the node.id check (found by the
            // madsim suite, seed 34 of acked_writes_survive_mixed_faults).
            fs::write_atomically(&path, text.as_bytes()).map_err(io("write"))?;
            Ok(id)
        }
        Err(e) => Err(io("read")(e)),
    }
}

/// A cluster id in Kafka's shape (a UUID in Kafka's base64 text form), from the clock and
/// process id: unique enough to tell clusters apart, which is all it is for.
fn new_cluster_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let seed = nanos ^ (u128::from(std::process::id()) << 64);
    // Spread the clock's and the pid's bits over all 128 (a multiply by an odd constant
    // and a xor-shift), so that ids made close together differ everywhere.
    let mixed = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
    let mixed = mixed ^ (mixed >> 67);
    crate::topic_id::to_base64(uuid::Uuid::from_u128(mixed))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_new_cluster_id_is_a_uuid_in_kafkas_text_form() {
        let a = super::new_cluster_id();
        let b = super::new_cluster_id();
        assert_eq!(a.len(), 22);
        assert!(crate::topic_id::from_base64(&a).is_some(), "{a}");
        assert_ne!(a, b, "ids made one after the other differ");
    }
}
