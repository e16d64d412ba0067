//! The thin `fuser::Filesystem` adapter: decodes each request, hands it to a tokio task that
//! calls the vfs (so the FUSE loop never waits on the network and one slow download never
//! blocks `ls` elsewhere), and replies with the result or the error's errno. What needs no
//! I/O is answered inline, on the FUSE thread: lookup, getattr and opendir of what the
//! metadata cache holds fresh (the vfs's `*_cached` fast paths; a miss takes the task),
//! readdir(plus) on a snapshot, xattrs but Box's shared link and lock (asked of Box, like every
//! xattr change), writes into a staging file, reads of bytes already in memory, readlink.
//!
//! Directories are listed with READDIRPLUS. A thread that stats what it lists (`ls -l`, `du`,
//! `rsync`) gets each entry with its attributes and costs no LOOKUP per entry; one that only
//! reads names (`find -name`) gets files without them, which spares the kernel an inode per
//! entry (`listers.rs` says how the two are told apart). Every entry sent with attributes but
//! `.` and `..` counts as a lookup for the kernel (it will FORGET it), exactly like a LOOKUP
//! reply; one sent without them does not.
//!
//! Every operation is counted and timed from its arrival here to its reply (`timing.rs`).

mod listers;
mod timing;

use crate::vfs::events::Inval;
use crate::vfs::{
    asks_box, is_virtual, settable_xattr, Attr, Caller, DirEntry, DirOpened, Fs, FsyncMode, KernelCopy, NodeKind,
    OwnerChange, SpecialType, VfsError,
};
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, KernelConfig, LockOwner,
    OpenAccMode, OpenFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request,
};
use listers::Listers;
use std::ffi::OsStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
pub use timing::describe as describe_metrics;
use timing::{spawn_blocking_timed, spawn_timed, OpTimer};

pub struct BoxFuse {
    fs: Arc<Fs>,
    rt: tokio::runtime::Handle,
    ttl: KernelTtl,
    listers: Arc<Listers>,
}

impl BoxFuse {
    pub fn new(fs: Arc<Fs>, rt: tokio::runtime::Handle, ttl: KernelTtl) -> BoxFuse {
        BoxFuse { fs, rt, ttl, listers: Arc::default() }
    }
}

/// How long the kernel keeps the entries and attributes it is given without asking again:
/// `followed` while the event stream is live (it tells the kernel of every change made
/// elsewhere, `notify_kernel`), else `unfollowed`. Clones share the stream's state.
#[derive(Clone, Debug)]
pub struct KernelTtl {
    followed: Duration,
    unfollowed: Duration,
    live: Arc<AtomicBool>,
}

impl KernelTtl {
    /// Not live until told so.
    pub fn new(followed: Duration, unfollowed: Duration) -> KernelTtl {
        KernelTtl { followed, unfollowed, live: Arc::new(AtomicBool::new(false)) }
    }

    pub fn set_live(&self, live: bool) {
        self.live.store(live, Ordering::Relaxed);
    }

    fn get(&self) -> Duration {
        if self.live.load(Ordering::Relaxed) {
            self.followed
        } else {
            self.unfollowed
        }
    }

    /// The TTL of `ino`: none for the hidden `.box/` (what it shows is asked of the vfs, and
    /// so of Box when its views expire, at every use; a restored item's dentry is looked up
    /// again at once).
    fn of(&self, ino: u64) -> Duration {
        if is_virtual(ino) {
            Duration::ZERO
        } else {
            self.get()
        }
    }
}

/// Tells the kernel to forget a dentry or an inode's attributes and data. Not finding it in
/// the kernel's caches is fine (nothing to forget).
pub fn notify_kernel(notifier: &fuser::Notifier, inval: &Inval) {
    let result = match inval {
        Inval::Entry { parent, name } => notifier.inval_entry(INodeNo(*parent), OsStr::new(name)),
        Inval::Inode(ino) => notifier.inval_inode(INodeNo(*ino), 0, 0),
    };
    if let Err(e) = result {
        if e.raw_os_error() != Some(libc::ENOENT) {
            tracing::debug!(?inval, error = %e, "kernel invalidation failed");
        }
    }
}

/// How the kernel caches a folder's entries: it keeps what it read (`FOPEN_CACHE_DIR`), across
/// opens while the folder's listing stays the same (`FOPEN_KEEP_CACHE`; without it the open
/// drops the copy). Every change of a listing, local or from Box's events, makes it a new
/// version, so the next open after it reads the entries anew.
fn dir_cache_flags(copy: KernelCopy) -> FopenFlags {
    match copy {
        KernelCopy::Current => FopenFlags::FOPEN_CACHE_DIR | FopenFlags::FOPEN_KEEP_CACHE,
        KernelCopy::Outdated => FopenFlags::FOPEN_CACHE_DIR,
        KernelCopy::None => FopenFlags::empty(),
    }
}

fn file_type(kind: NodeKind, special: Option<SpecialType>) -> FileType {
    match (kind, special) {
        (NodeKind::Dir, _) => FileType::Directory,
        (_, Some(SpecialType::Symlink)) => FileType::Symlink,
        (_, Some(SpecialType::Fifo)) => FileType::NamedPipe,
        (_, Some(SpecialType::Socket)) => FileType::Socket,
        (_, Some(SpecialType::CharDevice)) => FileType::CharDevice,
        (_, Some(SpecialType::BlockDevice)) => FileType::BlockDevice,
        (NodeKind::File | NodeKind::Link, None) => FileType::RegularFile,
    }
}

fn file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.blocks,
        atime: a.mtime,
        mtime: a.mtime,
        ctime: a.ctime,
        crtime: a.crtime,
        kind: file_type(a.kind, a.special),
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev,
        blksize: a.blksize,
        flags: 0,
    }
}

/// The errno for `e`; failures of Box or the network get one clear log line.
fn errno(op: &str, e: VfsError) -> Errno {
    if e.is_remote_failure() {
        tracing::error!(op, error = %e, "request failed");
    } else {
        tracing::debug!(op, error = %e, "request refused");
    }
    Errno::from_i32(e.errno())
}

/// How the kernel treats an open file: a write-only handle (`cp`, `rsync`, `>` redirections)
/// bypasses the page cache, so its bytes are copied once from the writer's buffer to the
/// daemon instead of into cache pages first; it cannot be mmapped, and the kernel drops cached
/// pages of the ranges it writes. Handles that can read use the page cache (`cached`).
fn open_mode(access: OpenAccMode, cached: FopenFlags) -> FopenFlags {
    match access {
        OpenAccMode::O_WRONLY => FopenFlags::FOPEN_DIRECT_IO,
        _ => cached,
    }
}

/// Answers a getxattr: the size asked for, the value, or why not.
fn reply_xattr(value: Result<Vec<u8>, VfsError>, size: u32, reply: ReplyXattr) {
    match value {
        Ok(v) if size == 0 => reply.size(v.len() as u32),
        Ok(v) if v.len() <= size as usize => reply.data(&v),
        Ok(_) => reply.error(Errno::from_i32(libc::ERANGE)),
        Err(e) => reply.error(errno("getxattr", e)),
    }
}

/// A name the vfs can use (Box names are UTF-8; anything else cannot exist there).
fn utf8(name: &OsStr) -> Option<String> {
    name.to_str().map(str::to_string)
}

/// The errno for a name that is not UTF-8 (so no Box item has it): `ENAMETOOLONG` past 255
/// bytes, else `otherwise`.
fn not_utf8(name_len: usize, otherwise: Errno) -> Errno {
    if name_len > 255 {
        Errno::ENAMETOOLONG
    } else {
        otherwise
    }
}

/// The user a request comes from (new files, directories and links are theirs).
fn caller(req: &Request) -> Caller {
    Caller { uid: req.uid(), gid: req.gid() }
}

impl BoxFuse {
    /// Adds `e` to a READDIRPLUS answer with its attributes; true when the answer is full
    /// (`e` not sent). An entry whose item is gone from the inode table meanwhile is left out.
    fn add_with_attributes(&self, reply: &mut ReplyDirectoryPlus, next: u64, e: &DirEntry) -> bool {
        // The kernel links every entry it gets with attributes but `.` and `..` (one lookup each).
        let dots = &*e.name == "." || &*e.name == "..";
        let attr = if dots { self.fs.attr_of(e.ino) } else { self.fs.looked_up(e.ino) };
        let Ok(attr) = attr else { return false };
        let full = reply.add(INodeNo(e.ino), next, &*e.name, &self.ttl.of(e.ino), &file_attr(&attr), Generation(0));
        if full && !dots {
            self.fs.forget(e.ino, 1); // not sent: the kernel holds no reference
        }
        full
    }
}

impl Filesystem for BoxFuse {
    /// Asks for 1 MiB requests (fuser derives `max_pages` from these): a quarter as many
    /// round trips through the kernel as the 128 KiB default, for reads and writes alike; and
    /// for `O_TRUNC` with the open.
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        const BIG: u32 = 1024 * 1024;
        if let Err(nearest) = config.set_max_readahead(BIG) {
            let _ = config.set_max_readahead(nearest);
        }
        if let Err(nearest) = config.set_max_write(BIG) {
            let _ = config.set_max_write(nearest);
        }
        // `O_TRUNC` arrives with the open instead of as a truncate after it: an existing file
        // opened to be overwritten is staged empty, not downloaded first.
        if let Err(unsupported) = config.add_capabilities(fuser::InitFlags::FUSE_ATOMIC_O_TRUNC) {
            tracing::debug!(?unsupported, "the kernel truncates after open");
        }
        // Listings come with each entry's attributes (`readdirplus`), always.
        if let Err(unsupported) = config.add_capabilities(fuser::InitFlags::FUSE_DO_READDIRPLUS) {
            tracing::debug!(?unsupported, "the kernel lists directories without attributes");
        }
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let op = OpTimer::start("lookup");
        let Some(name) = utf8(name) else { return reply.error(not_utf8(name.len(), Errno::ENOENT)) };
        let tid = req.pid();
        let answer =
            move |result: Result<Attr, VfsError>, ttl: &KernelTtl, listers: &Listers, reply: ReplyEntry| match result {
                Ok(a) => {
                    if a.kind != NodeKind::Dir {
                        listers.looked_up_file(tid);
                    }
                    reply.entry(&ttl.of(a.ino), &file_attr(&a), Generation(0))
                }
                Err(e) => reply.error(errno("lookup", e)),
            };
        if let Some(result) = self.fs.lookup_cached(parent.0, &name) {
            return answer(result, &self.ttl, &self.listers, reply);
        }
        let (fs, ttl, listers) = (self.fs.clone(), self.ttl.clone(), self.listers.clone());
        spawn_timed(&self.rt, op, async move { answer(fs.lookup(parent.0, &name).await, &ttl, &listers, reply) });
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        let _op = OpTimer::start("forget");
        self.fs.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let op = OpTimer::start("getattr");
        let answer = |result: Result<Attr, VfsError>, ttl: Duration, reply: ReplyAttr| match result {
            Ok(a) => reply.attr(&ttl, &file_attr(&a)),
            Err(e) => reply.error(errno("getattr", e)),
        };
        if let Some(result) = self.fs.getattr_cached(ino.0) {
            return answer(result, self.ttl.of(ino.0), reply);
        }
        let (fs, ttl) = (self.fs.clone(), self.ttl.of(ino.0));
        spawn_timed(&self.rt, op, async move { answer(fs.getattr(ino.0).await, ttl, reply) });
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let op = OpTimer::start("open");
        let write = flags.acc_mode() != OpenAccMode::O_RDONLY;
        let truncate = flags.0 & libc::O_TRUNC != 0;
        let fs = self.fs.clone();
        spawn_timed(&self.rt, op, async move {
            match fs.open(ino.0, write, truncate).await {
                Ok(fh) => reply.opened(FileHandle(fh), open_mode(flags.acc_mode(), FopenFlags::FOPEN_KEEP_CACHE)),
                Err(e) => reply.error(errno("open", e)),
            }
        });
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let op = OpTimer::start("read");
        // Bytes already in memory are answered here; only a read that must wait goes to a task.
        if let Some(data) = self.fs.read_ready(fh.0, offset, size) {
            return reply.data(&data);
        }
        let fs = self.fs.clone();
        spawn_timed(&self.rt, op, async move {
            match fs.read(fh.0, offset, size).await {
                Ok(data) => reply.data(&data),
                Err(e) => reply.error(errno("read", e)),
            }
        });
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let _op = OpTimer::start("release");
        self.fs.release(fh.0);
        reply.ok();
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        let op = OpTimer::start("flush");
        // Every close(2) lands here: only `--sync-on-close` has anything to wait for.
        if !self.fs.config().sync_on_close {
            return reply.ok();
        }
        let fs = self.fs.clone();
        spawn_timed(&self.rt, op, async move {
            match fs.flush(fh.0).await {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno("flush", e)),
            }
        });
    }

    /// Durable on the local disk (a blocking flush, off the FUSE threads), or under `--fsync
    /// box` committed in Box.
    fn fsync(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        let op = OpTimer::start("fsync");
        let fs = self.fs.clone();
        let answer = |result: Result<(), VfsError>, reply: ReplyEmpty| match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno("fsync", e)),
        };
        match fs.config().fsync {
            FsyncMode::Local => spawn_blocking_timed(&self.rt, op, move || answer(fs.fsync_local(ino.0), reply)),
            FsyncMode::Box => spawn_timed(&self.rt, op, async move { answer(fs.fsync_in_box(ino.0).await, reply) }),
        }
    }

    /// Directory changes in Box are single calls that have completed when they return; files
    /// created in the directory and not in Box yet are flushed to the local disk.
    fn fsyncdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        let op = OpTimer::start("fsyncdir");
        let fs = self.fs.clone();
        spawn_blocking_timed(&self.rt, op, move || match fs.fsyncdir_local(ino.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno("fsyncdir", e)),
        });
    }

    /// The folder is opened for its entries' attributes when the caller stats what it lists
    /// (`listers.rs`); the kernel keeps its copy of the entries when that copy serves.
    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let op = OpTimer::start("opendir");
        let answer = |result: Result<DirOpened, VfsError>, reply: ReplyOpen| match result {
            Ok(dir) => reply.opened(FileHandle(dir.fh), dir_cache_flags(dir.kernel_copy)),
            Err(e) => reply.error(errno("opendir", e)),
        };
        let with_attributes = self.listers.with_attributes(req.pid());
        if let Some(result) = self.fs.opendir_cached(ino.0, with_attributes) {
            return answer(result, reply);
        }
        let fs = self.fs.clone();
        spawn_timed(&self.rt, op, async move { answer(fs.opendir(ino.0, with_attributes).await, reply) });
    }

    fn readdir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let _op = OpTimer::start("readdir");
        match self.fs.readdir(fh.0) {
            Ok(dir) => {
                for (next, e) in dir.from(offset) {
                    let kind = file_type(e.kind, self.fs.special_type(e));
                    if reply.add(INodeNo(e.ino), next, kind, &*e.name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(errno("readdir", e)),
        }
    }

    /// Folders, and every entry of a folder opened for attributes, go with their attributes;
    /// the other entries as names.
    fn readdirplus(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, offset: u64, mut reply: ReplyDirectoryPlus) {
        let _op = OpTimer::start("readdirplus");
        let dir = match self.fs.readdir(fh.0) {
            Ok(dir) => dir,
            Err(e) => return reply.error(errno("readdirplus", e)),
        };
        for (next, e) in dir.from(offset) {
            let full = match dir.with_attributes() || e.kind == NodeKind::Dir {
                true => self.add_with_attributes(&mut reply, next, e),
                false => {
                    let kind = file_type(e.kind, self.fs.special_type(e));
                    reply.add_name_only(INodeNo(e.ino), next, kind, &*e.name)
                }
            };
            if full {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _flags: OpenFlags, reply: ReplyEmpty) {
        let _op = OpTimer::start("releasedir");
        self.fs.releasedir(fh.0);
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let op = OpTimer::start("statfs");
        let fs = self.fs.clone();
        spawn_timed(&self.rt, op, async move {
            const BSIZE: u64 = 4096;
            match fs.quota().await {
                Ok(u) => {
                    let blocks = u.space_amount / BSIZE;
                    let free = u.space_amount.saturating_sub(u.space_used) / BSIZE;
                    let files = fs.inode_count() as u64;
                    reply.statfs(blocks, free, free, files + 1_000_000, 1_000_000, BSIZE as u32, 255, BSIZE as u32);
                }
                Err(e) => reply.error(errno("statfs", e)),
            }
        });
    }

    /// Box's shared link and lock are asked of Box (in a task); the rest is answered here.
    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let op = OpTimer::start("getxattr");
        if let Some(name) = name.to_str().filter(|n| asks_box(n)).map(str::to_string) {
            let fs = self.fs.clone();
            spawn_timed(
                &self.rt,
                op,
                async move { reply_xattr(fs.box_xattr(ino.0, &name, size == 0).await, size, reply) },
            );
            return;
        }
        let value = match name.to_str() {
            Some(n) => self.fs.getxattr(ino.0, n),
            None => Err(VfsError::NoAttr),
        };
        reply_xattr(value, size, reply);
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let _op = OpTimer::start("listxattr");
        match self.fs.listxattr(ino.0) {
            Ok(names) => {
                let mut buf = Vec::new();
                for n in names {
                    buf.extend_from_slice(n.as_bytes());
                    buf.push(0);
                }
                if size == 0 {
                    reply.size(buf.len() as u32);
                } else if buf.len() <= size as usize {
                    reply.data(&buf);
                } else {
                    reply.error(Errno::from_i32(libc::ERANGE));
                }
            }
            Err(e) => reply.error(errno("listxattr", e)),
        }
    }

    /// Only Box's shared link and lock (each a Box call) and the pin can be set; anything
    /// else `ENOTSUP`.
    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let op = OpTimer::start("setxattr");
        let Some(name) = name.to_str().filter(|n| settable_xattr(n)).map(str::to_string) else {
            return reply.error(Errno::from_i32(libc::ENOTSUP));
        };
        let (fs, value) = (self.fs.clone(), value.to_vec());
        spawn_timed(&self.rt, op, async move {
            match fs.setxattr(ino.0, &name, &value, flags).await {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno("setxattr", e)),
            }
        });
    }

    /// Removing Box's shared link or lock removes it in Box, removing the pin unpins;
    /// anything else `ENOTSUP`.
    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let op = OpTimer::start("removexattr");
        let Some(name) = name.to_str().filter(|n| settable_xattr(n)).map(str::to_string) else {
            return reply.error(Errno::from_i32(libc::ENOTSUP));
        };
        let fs = self.fs.clone();
        spawn_timed(&self.rt, op, async move {
            match fs.removexattr(ino.0, &name).await {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno("removexattr", e)),
            }
        });
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: fuser::WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let _op = OpTimer::start("write");
        // A local pwrite into the staging file: quick enough to answer inline.
        match self.fs.write(fh.0, offset, data) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(errno("write", e)),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let _op = OpTimer::start("fallocate");
        // Local to the staging file, like `write`.
        match self.fs.fallocate(fh.0, offset, length, mode) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno("fallocate", e)),
        }
    }

    /// `mode` arrives with the caller's umask applied (by the kernel).
    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let op = OpTimer::start("create");
        let (fs, ttl, len, name, caller) = (self.fs.clone(), self.ttl.get(), name.len(), utf8(name), caller(req));
        let open = open_mode(OpenFlags(flags).acc_mode(), FopenFlags::empty());
        spawn_timed(&self.rt, op, async move {
            let Some(name) = name else { return reply.error(not_utf8(len, Errno::EINVAL)) };
            match fs.create(parent.0, &name, mode, caller).await {
                Ok((a, fh)) => reply.created(&ttl, &file_attr(&a), Generation(0), FileHandle(fh), open),
                Err(e) => reply.error(errno("create", e)),
            }
        });
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let op = OpTimer::start("mknod");
        let (fs, ttl, len, name, caller) = (self.fs.clone(), self.ttl.get(), name.len(), utf8(name), caller(req));
        spawn_timed(&self.rt, op, async move {
            let Some(name) = name else { return reply.error(not_utf8(len, Errno::EINVAL)) };
            match fs.mknod(parent.0, &name, mode, rdev, caller).await {
                Ok(a) => reply.entry(&ttl, &file_attr(&a), Generation(0)),
                Err(e) => reply.error(errno("mknod", e)),
            }
        });
    }

    fn mkdir(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, _umask: u32, reply: ReplyEntry) {
        let op = OpTimer::start("mkdir");
        let (fs, ttl, len, name, caller) = (self.fs.clone(), self.ttl.get(), name.len(), utf8(name), caller(req));
        spawn_timed(&self.rt, op, async move {
            let Some(name) = name else { return reply.error(not_utf8(len, Errno::EINVAL)) };
            match fs.mkdir(parent.0, &name, mode, caller).await {
                Ok(a) => reply.entry(&ttl, &file_attr(&a), Generation(0)),
                Err(e) => reply.error(errno("mkdir", e)),
            }
        });
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let op = OpTimer::start("unlink");
        let (fs, len, name) = (self.fs.clone(), name.len(), utf8(name));
        spawn_timed(&self.rt, op, async move {
            let Some(name) = name else { return reply.error(not_utf8(len, Errno::ENOENT)) };
            match fs.unlink(parent.0, &name).await {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno("unlink", e)),
            }
        });
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let op = OpTimer::start("rmdir");
        let (fs, len, name) = (self.fs.clone(), name.len(), utf8(name));
        spawn_timed(&self.rt, op, async move {
            let Some(name) = name else { return reply.error(not_utf8(len, Errno::ENOENT)) };
            match fs.rmdir(parent.0, &name).await {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno("rmdir", e)),
            }
        });
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        let op = OpTimer::start("rename");
        if flags.bits() & !libc::RENAME_NOREPLACE != 0 {
            return reply.error(Errno::from_i32(libc::EINVAL)); // RENAME_EXCHANGE / WHITEOUT: not on Box
        }
        let noreplace = flags.bits() & libc::RENAME_NOREPLACE != 0;
        let len = name.len().max(newname.len());
        let (fs, name, newname) = (self.fs.clone(), utf8(name), utf8(newname));
        spawn_timed(&self.rt, op, async move {
            let (Some(name), Some(newname)) = (name, newname) else {
                return reply.error(not_utf8(len, Errno::EINVAL));
            };
            match fs.rename(parent.0, &name, newparent.0, &newname, noreplace).await {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno("rename", e)),
            }
        });
    }

    /// The kernel has checked the caller may make the change (`default_permissions`: only the
    /// owner changes the mode, only root the owner, the group only to one of the caller's).
    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<fuser::TimeOrNow>,
        mtime: Option<fuser::TimeOrNow>,
        _ctime: Option<std::time::SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<std::time::SystemTime>,
        _chgtime: Option<std::time::SystemTime>,
        _bkuptime: Option<std::time::SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let op = OpTimer::start("setattr");
        let mtime = mtime.map(|t| match t {
            fuser::TimeOrNow::SpecificTime(t) => t,
            fuser::TimeOrNow::Now => std::time::SystemTime::now(),
        });
        let (fs, ttl, owner) = (self.fs.clone(), self.ttl.get(), OwnerChange { mode, uid, gid });
        spawn_timed(&self.rt, op, async move {
            match fs.setattr(ino.0, size, mtime, owner).await {
                Ok(a) => reply.attr(&ttl, &file_attr(&a)),
                Err(e) => reply.error(errno("setattr", e)),
            }
        });
    }

    /// A target that is not UTF-8 cannot be kept in Box metadata: `EINVAL`.
    fn symlink(&self, req: &Request, parent: INodeNo, name: &OsStr, target: &std::path::Path, reply: ReplyEntry) {
        let op = OpTimer::start("symlink");
        let (fs, ttl, len, name, caller) = (self.fs.clone(), self.ttl.get(), name.len(), utf8(name), caller(req));
        let target = target.to_str().map(str::to_string);
        spawn_timed(&self.rt, op, async move {
            let (Some(name), Some(target)) = (name, target) else {
                return reply.error(not_utf8(len, Errno::EINVAL));
            };
            match fs.symlink(parent.0, &name, &target, caller).await {
                Ok(a) => reply.entry(&ttl, &file_attr(&a), Generation(0)),
                Err(e) => reply.error(errno("symlink", e)),
            }
        });
    }

    /// Answered from the attributes stored on the link, without a download.
    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let _op = OpTimer::start("readlink");
        match self.fs.readlink(ino.0) {
            Ok(target) => reply.data(target.as_bytes()),
            Err(e) => reply.error(errno("readlink", e)),
        }
    }

    /// Hard links: Box items live in one folder each.
    fn link(&self, _req: &Request, _ino: INodeNo, _newparent: INodeNo, _newname: &OsStr, reply: ReplyEntry) {
        let _op = OpTimer::start("link");
        reply.error(Errno::from_i32(libc::ENOTSUP));
    }
}
