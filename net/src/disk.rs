//! The one seam between the broker's storage and a disk.
//!
//! Everything under `log.dirs` — segments, indexes, checkpoints, the metadata quorum's
//! log, `meta.properties` — is opened, written, synced, listed, renamed and deleted
//! through the names this module exports, spelled as `std::fs` spells them
//! (`fs::rename`, `File::open`, `OpenOptions`, `FileExt::read_exact_at`), so the storage
//! code reads as ordinary file code and the hot path pays nothing for the seam.
//!
//! Two implementations:
//! - normally, the real file system: these names *are* `std::fs`'s;
//! - under `--cfg madsim`, Eddy's simulated disk (`disk/sim.rs`): written bytes stay
//!   volatile until synced, and [`crash`] (called by the madsim harness as it kills a
//!   node) drops what was not synced, sometimes leaving a torn tail. madsim's own `fs`
//!   cannot serve here: it never loses unsynced data, and under madsim `tokio::fs` is
//!   the real file system (DESIGN.md, "Pitfalls already known").

#[cfg(not(madsim))]
pub(crate) use std::fs::{
    create_dir_all, metadata, read, read_dir, read_to_string, remove_dir_all, remove_file, rename,
    File, OpenOptions,
};
// Whole files are written through `write_atomically`; only tests write one directly.
#[cfg(all(test, not(madsim)))]
pub(crate) use std::fs::write;
#[cfg(not(madsim))]
pub(crate) use std::os::unix::fs::FileExt;

#[cfg(madsim)]
mod sim;
#[cfg(madsim)]
pub(crate) use sim::sync_latency;
#[cfg(all(test, madsim))]
pub(crate) use sim::write;
#[cfg(madsim)]
pub use sim::{clear, crash, CrashReport};
#[cfg(madsim)]
pub(crate) use sim::{
    create_dir_all, metadata, read, read_dir, read_to_string, remove_dir_all, remove_file, rename,
    File, FileExt, OpenOptions,
};

/// Replaces the file at `path` with `contents` so that a crash leaves the old file or
/// the new one, never a torn or empty one: written whole to `<path>.tmp`, synced,
/// renamed over `path`, and the directory synced (as Kafka writes `meta.properties`).
pub(crate) fn write_atomically(path: &std::path::Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let mut file = File::create(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    rename(&tmp, path)?;
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => Ok(()),
    }
}
