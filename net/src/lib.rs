//! Eddy's real shell: the part that touches the world on behalf of the pure core.
//!
//! The core (`eddy-core`) decides; this crate carries. Today it reads configuration
//! files: [`load_broker_config`] reads a `server.properties` (see [`properties`]) and the
//! command-line overrides and hands them to the core's `BrokerConfig`, which owns what
//! every key means. With issue 5 it will also speak the Kafka wire protocol, keep
//! partition logs on disk and own the sockets and timers, still making no protocol
//! decisions of its own.

pub mod broker;
pub mod disk;
mod meta;
mod partition_metadata;
pub mod peer;
pub mod properties;
pub mod raft_store;
pub mod storage;
mod topic_id;
pub mod wire;

#[cfg(test)]
mod test_support;

use std::path::{Path, PathBuf};

use eddy_core::config::{BrokerConfig, ConfigError, ConfigWarning};

/// Why the broker's configuration could not be loaded. Each message names where the bad
/// setting came from.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read (missing, unreadable, a directory).
    #[error("cannot read config file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid `.properties` syntax.
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// A setting in the file is invalid, unknown or in conflict with another.
    #[error("{}:{line}: {source}", path.display())]
    Entry {
        path: PathBuf,
        line: usize,
        source: Box<ConfigError>,
    },
    /// A setting from the command line is invalid, unknown or in conflict.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A command-line override that is not `key=value`.
    #[error("override {0:?} is not key=value; write it as, for example, num.partitions=3")]
    BadOverride(String),
}

/// Reads a server.properties file, applies `overrides` (key=value strings from the
/// command line, applied after the file), and builds the typed config. Errors name the
/// file and line.
///
/// With no file the overrides apply over the defaults. The file is read as UTF-8, or,
/// when it is not valid UTF-8, as ISO-8859-1, which is how Kafka (through Java's
/// `Properties.load`) reads every file.
pub fn load_broker_config(
    path: Option<&Path>,
    overrides: &[String],
) -> Result<(BrokerConfig, Vec<ConfigWarning>), LoadError> {
    // (line in the file, or None for an override; key; value)
    let mut pairs: Vec<(Option<usize>, String, String)> = Vec::new();
    if let Some(path) = path {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => e.into_bytes().iter().map(|&b| char::from(b)).collect(),
        };
        let entries = properties::parse(&text).map_err(|e| LoadError::Parse {
            path: path.to_path_buf(),
            line: e.line,
            message: e.message,
        })?;
        pairs.extend(entries.into_iter().map(|p| (Some(p.line), p.key, p.value)));
    }
    for o in overrides {
        match o.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                pairs.push((None, key.to_string(), value.to_string()));
            }
            _ => return Err(LoadError::BadOverride(o.clone())),
        }
    }

    BrokerConfig::from_pairs(pairs.iter().map(|(_, k, v)| (k.as_str(), v.as_str()))).map_err(
        |error| match (path, line_of(&error, &pairs)) {
            (Some(path), Some(line)) => LoadError::Entry {
                path: path.to_path_buf(),
                line,
                source: Box::new(error),
            },
            _ => LoadError::Config(error),
        },
    )
}

/// The file line of the pair that caused `error`, or None if it came from an override.
///
/// `from_pairs` stops at the first bad pair, so the first pair with the failing key
/// (and value) is the culprit; a conflict is reported at the last line that set the key,
/// the one whose value took effect.
fn line_of(error: &ConfigError, pairs: &[(Option<usize>, String, String)]) -> Option<usize> {
    let mut matching = pairs.iter().filter(|(_, k, v)| match error {
        ConfigError::Invalid { key, value, .. } => k.trim() == key && v.trim() == value,
        ConfigError::Unknown { key, .. } => k.trim() == key,
        ConfigError::Conflict { key, .. } => k.trim() == key,
    });
    let culprit = match error {
        ConfigError::Conflict { .. } => matching.next_back(),
        _ => matching.next(),
    };
    culprit.and_then(|(line, _, _)| *line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TempDir;
    use eddy_core::types::NodeId;

    fn strings(overrides: &[&str]) -> Vec<String> {
        overrides.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn seed_server_properties_loads_with_warnings() {
        let dir = TempDir::new("seed");
        let path = dir.file("server.properties", properties::SEED_SERVER_PROPERTIES);
        let (config, warnings) = load_broker_config(Some(&path), &[]).expect("loads");
        assert_eq!(config.node_id, NodeId(0));
        assert_eq!(config.log_dirs, vec!["/tmp/kafka-logs".to_string()]);
        assert_eq!(config.log_retention_ms, Some(168 * 3600 * 1000));
        assert_eq!(config.group_initial_rebalance_delay_ms, 0);
        assert_eq!(warnings.len(), 9, "{warnings:?}");
    }

    #[test]
    fn overrides_apply_after_the_file() {
        let dir = TempDir::new("overrides");
        let path = dir.file(
            "server.properties",
            "num.partitions=2\nlog.dirs=/file\nbroker.id=1\n",
        );
        let overrides = strings(&[
            "num.partitions=8",
            " log.dirs = /cli ",
            "listeners=PLAINTEXT://:9093",
        ]);
        let (config, warnings) = load_broker_config(Some(&path), &overrides).expect("loads");
        assert_eq!(config.num_partitions, 8);
        assert_eq!(config.log_dirs, vec!["/cli".to_string()]);
        assert_eq!(
            config.node_id,
            NodeId(1),
            "file settings not overridden stay"
        );
        assert_eq!(config.listeners, "PLAINTEXT://:9093");
        assert!(warnings.is_empty());
    }

    #[test]
    fn no_file_means_defaults_plus_overrides() {
        let (config, _) = load_broker_config(None, &[]).expect("loads");
        assert_eq!(config, BrokerConfig::default());
        let (config, _) = load_broker_config(None, &strings(&["node.id=4"])).expect("loads");
        assert_eq!(config.node_id, NodeId(4));
    }

    #[test]
    fn missing_file_error_names_the_path() {
        let dir = TempDir::new("missing");
        let path = dir.0.join("nope.properties");
        let e = load_broker_config(Some(&path), &[]).unwrap_err();
        assert!(matches!(e, LoadError::Io { .. }), "{e:?}");
        let message = e.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.starts_with("cannot read config file"), "{message}");
    }

    #[test]
    fn errors_in_the_file_name_file_and_line() {
        let dir = TempDir::new("errors");
        let path = dir.file(
            "bad.properties",
            "# c\nnum.partitions=1\n\nlog.segment.bytes = 12\n",
        );
        let e = load_broker_config(Some(&path), &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}:4: log.segment.bytes = 12: must be at least 14 (Kafka's floor: the \
                 overhead of one empty v0 record)",
                path.display()
            )
        );

        let path = dir.file("typo.properties", "num.partitions=1\nnum.partition=3\n");
        let e = load_broker_config(Some(&path), &[]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("{}:2: num.partition", path.display())),
            "{e}"
        );

        let path = dir.file(
            "conflict.properties",
            "broker.id=1\nbroker.id=2\nnode.id=1\n",
        );
        let e = load_broker_config(Some(&path), &[]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("{}:2: broker.id = 2 conflicts", path.display())),
            "{e}"
        );

        let path = dir.file("escape.properties", "a=1\nb=\\uZZZZ\n");
        let e = load_broker_config(Some(&path), &[]).unwrap_err();
        assert!(matches!(e, LoadError::Parse { line: 2, .. }), "{e:?}");
        assert!(
            e.to_string()
                .starts_with(&format!("{}:2: malformed", path.display())),
            "{e}"
        );
    }

    #[test]
    fn errors_in_overrides_are_plain_config_errors() {
        let dir = TempDir::new("override-errors");
        let path = dir.file("server.properties", "num.partitions=1\n");
        let e = load_broker_config(Some(&path), &strings(&["num.partitions=0"])).unwrap_err();
        assert!(
            matches!(e, LoadError::Config(ConfigError::Invalid { .. })),
            "{e:?}"
        );
        assert_eq!(e.to_string(), "num.partitions = 0: must be at least 1");

        for bad in ["num.partitions", "=3", "  =3"] {
            let e = load_broker_config(None, &strings(&[bad])).unwrap_err();
            assert!(matches!(e, LoadError::BadOverride(_)), "{e:?}");
            assert!(e.to_string().contains("is not key=value"), "{e}");
        }
    }

    #[test]
    fn non_utf8_file_is_read_as_latin_1_like_kafka() {
        let dir = TempDir::new("latin1");
        let path = dir.file("server.properties", b"# caf\xe9\nlog.dirs=/data/caf\xe9\n");
        let (config, _) = load_broker_config(Some(&path), &[]).expect("loads");
        assert_eq!(config.log_dirs, vec!["/data/café".to_string()]);
    }
}
