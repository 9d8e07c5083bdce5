//! Eddy's simulated disk, for the madsim level: files in memory, outside every node.
//!
//! A file keeps two images: what was written (`data`, what reads see) and what was last
//! synced (`synced`). [`crash`] — the harness calls it for a node's directory just
//! before madsim kills the node — puts every file under the directory back to its
//! synced image; when the unsynced part only appended to it, a seeded choice keeps a
//! prefix of the appended bytes instead, as a torn tail (a real disk may have written
//! some pages of an append before power failed).
//!
//! The disk lives in a process-wide map keyed by path, not in the node: a killed node's
//! tasks are dropped, the disk is not. The harness gives each run a directory of its
//! own and [`clear`]s it at the end (statics outlive a seed).
//!
//! Simplifications, each on the safe side of what a real file system does only where
//! noted: directory entries (create, rename, remove) are durable at once, as with a
//! journaling file system that orders metadata; a sync of one handle syncs the file;
//! `try_clone` gives a handle with its own position.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fmt;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Default)]
struct Inode {
    data: Vec<u8>,
    synced: Vec<u8>,
}

struct Disk {
    files: BTreeMap<PathBuf, Arc<Mutex<Inode>>>,
    dirs: BTreeSet<PathBuf>,
}

static DISK: Mutex<Disk> = Mutex::new(Disk {
    files: BTreeMap::new(),
    dirs: BTreeSet::new(),
});

fn disk() -> MutexGuard<'static, Disk> {
    // A panic elsewhere (a failed assertion in a node) must not hide the disk.
    DISK.lock().unwrap_or_else(|e| e.into_inner())
}

fn lock(inode: &Mutex<Inode>) -> MutexGuard<'_, Inode> {
    inode.lock().unwrap_or_else(|e| e.into_inner())
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: not on the simulated disk", path.display()),
    )
}

fn parent_exists(d: &Disk, path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() && !d.dirs.contains(p) => Err(not_found(p)),
        _ => Ok(()),
    }
}

/// What a [`crash`] did to a node's files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CrashReport {
    /// Files put back to their synced image.
    pub reverted: u32,
    /// Files left with part of their unsynced appended bytes: a torn tail.
    pub torn: u32,
}

/// Drops what was not synced in every file under `dir`, as a power failure would; a
/// file whose unsynced part was appended keeps, by `seed`, none, some or all of it.
pub fn crash(dir: &Path, seed: u64) -> CrashReport {
    let d = disk();
    let mut report = CrashReport::default();
    let mut rng = seed;
    for (_, inode) in d.files.iter().filter(|(p, _)| p.starts_with(dir)) {
        let mut inode = lock(inode);
        let Inode { data, synced } = &mut *inode;
        if data == synced {
            continue;
        }
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let appended = data.len() > synced.len() && data.starts_with(synced);
        if appended && (rng >> 33).is_multiple_of(2) {
            let unsynced = data.len() - synced.len();
            let keep = ((rng >> 8) as usize) % (unsynced + 1);
            data.truncate(synced.len() + keep);
            report.torn += 1;
        } else {
            data.clone_from(synced);
            report.reverted += 1;
        }
    }
    report
}

/// How long a sync takes: 0.5 to 20 ms, drawn from the simulated clock (madsim's
/// `SystemTime` is a function of the seed), so it varies without a generator kept in a
/// static, which would outlive the seed.
pub(crate) fn sync_latency() -> std::time::Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::time::Duration::from_micros(500 + u64::from(nanos / 7) % 19_500)
}

/// Removes everything under `dir` from the simulated disk (the end of a run).
pub fn clear(dir: &Path) {
    let mut d = disk();
    d.files.retain(|p, _| !p.starts_with(dir));
    d.dirs.retain(|p| !p.starts_with(dir));
}

pub(crate) fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let mut d = disk();
    for p in path.as_ref().ancestors() {
        if !p.as_os_str().is_empty() {
            d.dirs.insert(p.to_path_buf());
        }
    }
    Ok(())
}

/// A directory entry, as `std::fs::DirEntry` offers it.
pub(crate) struct DirEntry {
    path: PathBuf,
    is_dir: bool,
}

impl DirEntry {
    pub(crate) fn path(&self) -> PathBuf {
        self.path.clone()
    }

    pub(crate) fn file_name(&self) -> OsString {
        self.path.file_name().unwrap_or_default().to_os_string()
    }

    pub(crate) fn file_type(&self) -> io::Result<Metadata> {
        Ok(Metadata {
            len: 0,
            is_dir: self.is_dir,
        })
    }
}

/// A file's or directory's metadata (and file type).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Metadata {
    len: u64,
    is_dir: bool,
}

impl Metadata {
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn is_dir(&self) -> bool {
        self.is_dir
    }
}

pub(crate) fn read_dir(
    path: impl AsRef<Path>,
) -> io::Result<std::vec::IntoIter<io::Result<DirEntry>>> {
    let path = path.as_ref();
    let d = disk();
    if !d.dirs.contains(path) {
        return Err(not_found(path));
    }
    let in_dir = |p: &Path| p.parent() == Some(path);
    let mut entries: Vec<io::Result<DirEntry>> = Vec::new();
    for p in d.dirs.iter().filter(|p| in_dir(p)) {
        entries.push(Ok(DirEntry {
            path: p.clone(),
            is_dir: true,
        }));
    }
    for p in d.files.keys().filter(|p| in_dir(p)) {
        entries.push(Ok(DirEntry {
            path: p.clone(),
            is_dir: false,
        }));
    }
    Ok(entries.into_iter())
}

pub(crate) fn metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    let path = path.as_ref();
    let d = disk();
    if let Some(inode) = d.files.get(path) {
        return Ok(Metadata {
            len: lock(inode).data.len() as u64,
            is_dir: false,
        });
    }
    if d.dirs.contains(path) {
        return Ok(Metadata {
            len: 0,
            is_dir: true,
        });
    }
    Err(not_found(path))
}

pub(crate) fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let path = path.as_ref();
    let d = disk();
    let inode = d.files.get(path).ok_or_else(|| not_found(path))?;
    let data = lock(inode).data.clone();
    Ok(data)
}

pub(crate) fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    String::from_utf8(read(path)?).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
pub(crate) fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(contents.as_ref())
}

pub(crate) fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    disk()
        .files
        .remove(path)
        .map(|_| ())
        .ok_or_else(|| not_found(path))
}

pub(crate) fn remove_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    let mut d = disk();
    if !d.dirs.contains(path) {
        return Err(not_found(path));
    }
    d.files.retain(|p, _| !p.starts_with(path));
    d.dirs.retain(|p| !p.starts_with(path));
    Ok(())
}

pub(crate) fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let (from, to) = (from.as_ref(), to.as_ref());
    let mut d = disk();
    parent_exists(&d, to)?;
    if let Some(inode) = d.files.remove(from) {
        d.files.insert(to.to_path_buf(), inode);
        return Ok(());
    }
    if !d.dirs.contains(from) {
        return Err(not_found(from));
    }
    let moved = |p: &Path| to.join(p.strip_prefix(from).expect("under from"));
    let dirs: Vec<PathBuf> = d
        .dirs
        .iter()
        .filter(|p| p.starts_with(from))
        .cloned()
        .collect();
    for p in dirs {
        d.dirs.remove(&p);
        d.dirs.insert(moved(&p));
    }
    let files: Vec<PathBuf> = d
        .files
        .keys()
        .filter(|p| p.starts_with(from))
        .cloned()
        .collect();
    for p in files {
        let inode = d.files.remove(&p).expect("listed");
        d.files.insert(moved(&p), inode);
    }
    Ok(())
}

/// `std::fs::OpenOptions`, as far as the storage code uses it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct OpenOptions {
    write: bool,
    append: bool,
    create: bool,
    truncate: bool,
}

impl OpenOptions {
    pub(crate) fn new() -> OpenOptions {
        OpenOptions::default()
    }

    /// Every simulated handle can read.
    pub(crate) fn read(&mut self, _read: bool) -> &mut OpenOptions {
        self
    }

    pub(crate) fn write(&mut self, write: bool) -> &mut OpenOptions {
        self.write = write;
        self
    }

    pub(crate) fn append(&mut self, append: bool) -> &mut OpenOptions {
        self.append = append;
        self
    }

    pub(crate) fn create(&mut self, create: bool) -> &mut OpenOptions {
        self.create = create;
        self
    }

    pub(crate) fn truncate(&mut self, truncate: bool) -> &mut OpenOptions {
        self.truncate = truncate;
        self
    }

    pub(crate) fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        let path = path.as_ref();
        let mut d = disk();
        if d.dirs.contains(path) {
            return Ok(File {
                path: path.to_path_buf(),
                inode: None,
                position: AtomicU64::new(0),
                append: false,
            });
        }
        let inode = match d.files.get(path) {
            Some(inode) => Arc::clone(inode),
            None if self.create => {
                parent_exists(&d, path)?;
                let inode = Arc::new(Mutex::new(Inode::default()));
                d.files.insert(path.to_path_buf(), Arc::clone(&inode));
                inode
            }
            None => return Err(not_found(path)),
        };
        if self.truncate {
            lock(&inode).data.clear();
        }
        Ok(File {
            path: path.to_path_buf(),
            inode: Some(inode),
            position: AtomicU64::new(0),
            append: self.append,
        })
    }
}

/// An open simulated file (or directory, which only syncs).
pub(crate) struct File {
    path: PathBuf,
    inode: Option<Arc<Mutex<Inode>>>,
    /// Shared by `&File` reads and writes, as the file offset of an fd is.
    position: AtomicU64,
    append: bool,
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "File({})", self.path.display())
    }
}

impl File {
    pub(crate) fn open(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().read(true).open(path)
    }

    pub(crate) fn create(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
    }

    fn position(&self) -> u64 {
        self.position.load(Ordering::Relaxed)
    }

    fn inode(&self) -> io::Result<&Arc<Mutex<Inode>>> {
        self.inode.as_ref().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::IsADirectory,
                format!("{} is a directory", self.path.display()),
            )
        })
    }

    pub(crate) fn sync_all(&self) -> io::Result<()> {
        if let Some(inode) = &self.inode {
            let mut inode = lock(inode);
            let Inode { data, synced } = &mut *inode;
            synced.clone_from(data);
        }
        Ok(())
    }

    pub(crate) fn sync_data(&self) -> io::Result<()> {
        self.sync_all()
    }

    pub(crate) fn set_len(&self, len: u64) -> io::Result<()> {
        lock(self.inode()?).data.resize(len as usize, 0);
        Ok(())
    }

    pub(crate) fn try_clone(&self) -> io::Result<File> {
        Ok(File {
            path: self.path.clone(),
            inode: self.inode.clone(),
            position: AtomicU64::new(self.position()),
            append: self.append,
        })
    }
}

/// The part of `std::os::unix::fs::FileExt` the storage code uses.
pub(crate) trait FileExt {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
}

impl FileExt for File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let inode = lock(self.inode()?);
        let start = offset as usize;
        let end = start.checked_add(buf.len());
        match end {
            Some(end) if end <= inode.data.len() => {
                buf.copy_from_slice(&inode.data[start..end]);
                Ok(())
            }
            _ => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "failed to fill whole buffer",
            )),
        }
    }
}

impl Read for File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Read for &File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let inode = lock(self.inode()?);
        let start = (self.position() as usize).min(inode.data.len());
        let n = buf.len().min(inode.data.len() - start);
        buf[..n].copy_from_slice(&inode.data[start..start + n]);
        self.position.store((start + n) as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl Write for File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut inode = lock(self.inode()?);
        let start = if self.append {
            inode.data.len()
        } else {
            self.position() as usize
        };
        let end = start + buf.len();
        if inode.data.len() < end {
            inode.data.resize(end, 0);
        }
        inode.data[start..end].copy_from_slice(buf);
        self.position.store(end as u64, Ordering::Relaxed);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for File {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let len = lock(self.inode()?).data.len() as i128;
        let target = match pos {
            SeekFrom::Start(p) => i128::from(p),
            SeekFrom::End(d) => len + i128::from(d),
            SeekFrom::Current(d) => i128::from(self.position()) + i128::from(d),
        };
        if target < 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the file",
            ));
        }
        self.position.store(target as u64, Ordering::Relaxed);
        Ok(target as u64)
    }
}

/// The simulated disk as a [`super::Disk`]: the functions above.
pub(crate) struct SimDisk;

impl super::Disk for SimDisk {
    type File = File;
    type OpenOptions = OpenOptions;
    type Metadata = Metadata;
    type DirEntry = DirEntry;
    type ReadDir = std::vec::IntoIter<io::Result<DirEntry>>;
    fn create_dir_all(path: &Path) -> io::Result<()> {
        create_dir_all(path)
    }
    fn metadata(path: &Path) -> io::Result<Metadata> {
        metadata(path)
    }
    fn read(path: &Path) -> io::Result<Vec<u8>> {
        read(path)
    }
    fn read_dir(path: &Path) -> io::Result<Self::ReadDir> {
        read_dir(path)
    }
    fn read_to_string(path: &Path) -> io::Result<String> {
        read_to_string(path)
    }
    fn remove_dir_all(path: &Path) -> io::Result<()> {
        remove_dir_all(path)
    }
    fn remove_file(path: &Path) -> io::Result<()> {
        remove_file(path)
    }
    fn rename(from: &Path, to: &Path) -> io::Result<()> {
        rename(from, to)
    }
}

impl super::DiskFile for File {
    fn open(path: &Path) -> io::Result<Self> {
        File::open(path)
    }
    fn create(path: &Path) -> io::Result<Self> {
        File::create(path)
    }
    fn sync_all(&self) -> io::Result<()> {
        File::sync_all(self)
    }
    fn sync_data(&self) -> io::Result<()> {
        File::sync_data(self)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }
    fn try_clone(&self) -> io::Result<Self> {
        File::try_clone(self)
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        FileExt::read_exact_at(self, buf, offset)
    }
}
