//! The one seam between the broker's storage and a disk.
//!
//! Everything under `log.dirs` — segments, indexes, checkpoints, the metadata quorum's
//! log, `meta.properties` — is opened, written, synced, listed, renamed and deleted
//! through the names this module exports, spelled as `std::fs` spells them
//! (`fs::rename`, `File::open`, `OpenOptions`, `FileExt::read_exact_at`), so the storage
//! code reads as ordinary file code and the hot path pays nothing for the seam.
//!
//! Two implementations of one trait, [`Disk`] (with [`DiskFile`] for open files):
//! - normally, the real file system ([`RealDisk`]): each name is a direct `std::fs` call;
//! - under `--cfg madsim`, Eddy's simulated disk (`disk/sim.rs`): written bytes stay
//!   volatile until synced, and [`crash`] (called by the madsim harness as it kills a
//!   node) drops what was not synced, sometimes leaving a torn tail. madsim's own `fs`
//!   cannot serve here: it never loses unsynced data, and under madsim `tokio::fs` is
//!   the real file system (DESIGN.md, "Pitfalls already known").

use std::io;
use std::path::Path;

/// The file operations the broker's storage uses, as one trait with two
/// implementations: [`RealDisk`] (the real file system) and, under `--cfg madsim`,
/// `sim::SimDisk`. [`Current`] is the one the build selects; this module's functions and
/// types are [`Current`]'s, so the storage code is written against the trait while each
/// call is a static, inlinable call of the concrete implementation (on the real disk, a
/// `std::fs` call).
pub(crate) trait Disk {
    type File: DiskFile;
    type OpenOptions;
    type Metadata;
    type DirEntry;
    type ReadDir: Iterator<Item = io::Result<Self::DirEntry>>;
    fn create_dir_all(path: &Path) -> io::Result<()>;
    fn metadata(path: &Path) -> io::Result<Self::Metadata>;
    fn read(path: &Path) -> io::Result<Vec<u8>>;
    fn read_dir(path: &Path) -> io::Result<Self::ReadDir>;
    fn read_to_string(path: &Path) -> io::Result<String>;
    fn remove_dir_all(path: &Path) -> io::Result<()>;
    fn remove_file(path: &Path) -> io::Result<()>;
    fn rename(from: &Path, to: &Path) -> io::Result<()>;
}

/// An open file of a [`Disk`]: read, written, positioned, read at an offset, synced.
/// The storage code calls these on [`File`], the concrete type, where they resolve to
/// its own methods (std's, or the simulated file's); the trait is what both must offer.
#[allow(dead_code)]
pub(crate) trait DiskFile:
    io::Read + io::Write + io::Seek + std::fmt::Debug + Send + Sync + Sized
{
    fn open(path: &Path) -> io::Result<Self>;
    fn create(path: &Path) -> io::Result<Self>;
    fn sync_all(&self) -> io::Result<()>;
    fn sync_data(&self) -> io::Result<()>;
    fn set_len(&self, len: u64) -> io::Result<()>;
    fn try_clone(&self) -> io::Result<Self>;
    /// `FileExt::read_exact_at`: reads `buf.len()` bytes at `offset`, the position
    /// unmoved.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
}

/// The real file system: `std::fs`.
#[cfg_attr(madsim, allow(dead_code))]
pub(crate) struct RealDisk;

impl Disk for RealDisk {
    type File = std::fs::File;
    type OpenOptions = std::fs::OpenOptions;
    type Metadata = std::fs::Metadata;
    type DirEntry = std::fs::DirEntry;
    type ReadDir = std::fs::ReadDir;
    fn create_dir_all(path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }
    fn metadata(path: &Path) -> io::Result<std::fs::Metadata> {
        std::fs::metadata(path)
    }
    fn read(path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }
    fn read_dir(path: &Path) -> io::Result<std::fs::ReadDir> {
        std::fs::read_dir(path)
    }
    fn read_to_string(path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }
    fn remove_dir_all(path: &Path) -> io::Result<()> {
        std::fs::remove_dir_all(path)
    }
    fn remove_file(path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn rename(from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
}

impl DiskFile for std::fs::File {
    fn open(path: &Path) -> io::Result<Self> {
        std::fs::File::open(path)
    }
    fn create(path: &Path) -> io::Result<Self> {
        std::fs::File::create(path)
    }
    fn sync_all(&self) -> io::Result<()> {
        std::fs::File::sync_all(self)
    }
    fn sync_data(&self) -> io::Result<()> {
        std::fs::File::sync_data(self)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        std::fs::File::set_len(self, len)
    }
    fn try_clone(&self) -> io::Result<Self> {
        std::fs::File::try_clone(self)
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }
}

/// The disk this build uses.
#[cfg(not(madsim))]
pub(crate) type Current = RealDisk;
#[cfg(madsim)]
pub(crate) type Current = sim::SimDisk;

pub(crate) type File = <Current as Disk>::File;
pub(crate) type OpenOptions = <Current as Disk>::OpenOptions;

#[cfg(not(madsim))]
pub(crate) use std::os::unix::fs::FileExt;
// Whole files are written through `write_atomically`; only tests write one directly.
#[cfg(all(test, not(madsim)))]
pub(crate) use std::fs::write;

#[cfg(madsim)]
mod sim;
#[cfg(madsim)]
pub(crate) use sim::sync_latency;
#[cfg(all(test, madsim))]
pub(crate) use sim::write;
#[cfg(madsim)]
pub(crate) use sim::FileExt;
#[cfg(madsim)]
pub use sim::{clear, crash, CrashReport};

#[inline]
pub(crate) fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    Current::create_dir_all(path.as_ref())
}

#[inline]
pub(crate) fn metadata(path: impl AsRef<Path>) -> io::Result<<Current as Disk>::Metadata> {
    Current::metadata(path.as_ref())
}

#[inline]
pub(crate) fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    Current::read(path.as_ref())
}

#[inline]
pub(crate) fn read_dir(path: impl AsRef<Path>) -> io::Result<<Current as Disk>::ReadDir> {
    Current::read_dir(path.as_ref())
}

#[inline]
pub(crate) fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    Current::read_to_string(path.as_ref())
}

#[inline]
pub(crate) fn remove_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    Current::remove_dir_all(path.as_ref())
}

#[inline]
pub(crate) fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    Current::remove_file(path.as_ref())
}

#[inline]
pub(crate) fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    Current::rename(from.as_ref(), to.as_ref())
}

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
