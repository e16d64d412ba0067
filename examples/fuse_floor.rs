//! The floor of a cold read through FUSE on this machine, for `scripts/bench/read.sh`: a
//! filesystem that does nothing but answer reads of one file (`/big`, `SIZE` bytes) from a
//! buffer in memory, mounted with the options boxfs uses (1 MiB requests, page-cached reads, two
//! FUSE threads). Whatever `cat` takes through it is the kernel's share of any FUSE read, which
//! no daemon can avoid. Usage: `fuse_floor MOUNTPOINT SIZE`; unmount with `fusermount3 -u`.

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, KernelConfig, LockOwner,
    MountOption, OpenFlags, ReplyAttr, ReplyData, ReplyEntry, ReplyOpen, Request,
};
use std::ffi::OsStr;
use std::time::{Duration, UNIX_EPOCH};

const TTL: Duration = Duration::from_secs(3600);
const REQUEST: u32 = 1024 * 1024;

struct Floor {
    size: u64,
    bytes: Vec<u8>,
}

impl Floor {
    fn attr(&self, ino: INodeNo) -> FileAttr {
        let dir = ino == INodeNo::ROOT;
        FileAttr {
            ino,
            size: if dir { 0 } else { self.size },
            blocks: if dir { 0 } else { self.size.div_ceil(512) },
            atime: UNIX_EPOCH,
            mtime: UNIX_EPOCH,
            ctime: UNIX_EPOCH,
            crtime: UNIX_EPOCH,
            kind: if dir { FileType::Directory } else { FileType::RegularFile },
            perm: if dir { 0o555 } else { 0o444 },
            nlink: 1,
            uid: 0,
            gid: 0,
            rdev: 0,
            flags: 0,
            blksize: 4096,
        }
    }
}

impl Filesystem for Floor {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        if let Err(nearest) = config.set_max_readahead(REQUEST) {
            let _ = config.set_max_readahead(nearest);
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match (parent, name.to_str()) {
            (INodeNo::ROOT, Some("big")) => reply.entry(&TTL, &self.attr(INodeNo(2)), Generation(0)),
            _ => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        reply.attr(&TTL, &self.attr(ino));
    }

    fn open(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        reply.opened(FileHandle(1), FopenFlags::empty());
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let len = self.size.saturating_sub(offset).min(u64::from(size)) as usize;
        reply.data(&self.bytes[..len.min(self.bytes.len())]);
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(mountpoint), Some(size)) = (args.next(), args.next().and_then(|s| s.parse().ok())) else {
        eprintln!("usage: fuse_floor MOUNTPOINT SIZE");
        std::process::exit(2);
    };
    let mut config = fuser::Config::default();
    config.mount_options = vec![MountOption::RO, MountOption::FSName("fuse_floor".into())];
    config.n_threads = Some(2);
    let floor = Floor { size, bytes: vec![0x5a; REQUEST as usize] };
    if let Err(e) = fuser::mount(floor, &mountpoint, &config) {
        eprintln!("fuse_floor: {e}");
        std::process::exit(1);
    }
}
