//! Memory for big transfer buffers (upload parts, file ranges read for hashing, direct-I/O
//! bounce buffers): [`BlockBuf`], a fixed-capacity, page-aligned buffer that bytes are streamed
//! into (or a file range read into) and that then becomes a [`Bytes`] without a copy, and
//! [`BufPool`], which hands out full-size buffers and takes them back when the last `Bytes` of
//! one is dropped. Page alignment lets them be written with `O_DIRECT` (no second copy through
//! the page cache). Buffers are their own anonymous mappings, not heap memory: freeing one
//! gives its memory back at once, where the allocator kept blocks of this size in fragmented
//! arenas (measured: peak RSS up to four times the live buffers). Pooling keeps full-size
//! buffers mapped between uses, so a steady stream of them costs no page faults; the pool keeps
//! at most `keep` idle ones.

use bytes::Bytes;
use std::io;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

/// Alignment of every buffer: a page, enough for `O_DIRECT` on any common block device.
pub const ALIGN: usize = 4096;

/// A private anonymous mapping of a fixed size (page-aligned, zero-filled by the kernel).
struct Raw {
    ptr: NonNull<u8>,
    size: usize,
}

// SAFETY: `Raw` owns its mapping exclusively (no aliasing pointers escape it except through
// `&self`/`&mut self` borrows), so moving or sharing it across threads is sound.
unsafe impl Send for Raw {}
unsafe impl Sync for Raw {}

impl Raw {
    /// Maps `capacity` bytes (rounded up to pages), populated at once: one fault-in instead of
    /// one fault per page as it fills.
    fn new(capacity: usize) -> Raw {
        let size = capacity.max(1).next_multiple_of(ALIGN);
        let (prot, flags) = (libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS);
        // SAFETY: a fresh anonymous mapping; no existing memory is affected.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), size, prot, flags | libc::MAP_POPULATE, -1, 0) };
        if ptr == libc::MAP_FAILED {
            // Out of address space or memory: the same outcome as a failed allocation.
            std::alloc::handle_alloc_error(std::alloc::Layout::from_size_align(size, ALIGN).expect("layout"));
        }
        Raw { ptr: NonNull::new(ptr.cast()).expect("mmap never returns null"), size }
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        // SAFETY: mapped in `Raw::new` with this size, unmapped once.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.size) };
    }
}

/// Keeps up to `keep` free full-block buffers for reuse.
pub struct BufPool {
    block_size: usize,
    keep: usize,
    free: Mutex<Vec<Raw>>,
}

impl BufPool {
    /// A pool of `block_size` buffers that keeps at most `keep` idle ones.
    pub fn new(block_size: u64, keep: usize) -> Arc<BufPool> {
        Arc::new(BufPool { block_size: block_size as usize, keep, free: Mutex::new(Vec::new()) })
    }

    /// A buffer for up to `len` bytes: a pooled one for a full block, a fresh one for less (so a
    /// small file's read never pins a whole block of memory).
    pub fn take(self: &Arc<Self>, len: u64) -> BlockBuf {
        let len = len as usize;
        let pooled = len == self.block_size;
        let raw = if pooled {
            self.free.lock().unwrap_or_else(|p| p.into_inner()).pop().unwrap_or_else(|| Raw::new(len))
        } else {
            Raw::new(len)
        };
        BlockBuf { raw: Some(raw), len: 0, limit: len, pool: pooled.then(|| self.clone()) }
    }

    /// A pooled full-block buffer limited to `len` bytes (at most a block): for transient
    /// buffers of any size, which then cost no fresh mapping each time.
    pub fn take_pooled(self: &Arc<Self>, len: u64) -> BlockBuf {
        let mut buf = self.take(self.block_size as u64);
        buf.limit = (len as usize).min(self.block_size);
        buf
    }

    /// Idle buffers held for reuse.
    #[cfg(test)]
    pub fn idle(&self) -> usize {
        self.free.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn give_back(&self, raw: Raw) {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        if free.len() < self.keep {
            free.push(raw);
        }
    }
}

/// A page-aligned buffer filled front to back up to its limit; see the module doc.
pub struct BlockBuf {
    /// Always `Some` until dropped (taken out in `Drop` to hand it back to the pool).
    raw: Option<Raw>,
    len: usize,
    limit: usize,
    /// Where a full-block buffer goes back to (`None`: freed when dropped).
    pool: Option<Arc<BufPool>>,
}

impl BlockBuf {
    /// Appends as much of `data` as fits under the limit; returns how much that was.
    pub fn push(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.limit - self.len);
        let raw = self.raw.as_mut().expect("buffer present until drop");
        // SAFETY: `len + n <= limit <= capacity`, so the destination lies inside the allocation,
        // which `data` (a shared borrow held elsewhere) cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), raw.ptr.as_ptr().add(self.len), n) };
        self.len += n;
        n
    }

    /// Fills the rest of the buffer, up to its limit, with `fill` (a file read, say).
    pub fn fill_with(&mut self, fill: impl FnOnce(&mut [u8]) -> io::Result<()>) -> io::Result<()> {
        let raw = self.raw.as_mut().expect("buffer present until drop");
        // SAFETY: `len..limit` lies inside the allocation (`limit <= capacity`), is exclusively
        // borrowed through `&mut self`, and the mapping is zero-filled, so initialised.
        let rest = unsafe { std::slice::from_raw_parts_mut(raw.ptr.as_ptr().add(self.len), self.limit - self.len) };
        fill(rest)?;
        self.len = self.limit;
        Ok(())
    }

    /// The bytes written, as `Bytes` sharing this buffer (returned to the pool when the last
    /// clone is dropped).
    pub fn freeze(self) -> Bytes {
        Bytes::from_owner(self)
    }
}

impl AsRef<[u8]> for BlockBuf {
    fn as_ref(&self) -> &[u8] {
        let raw = self.raw.as_ref().expect("buffer present until drop");
        // SAFETY: the first `len` bytes were initialised by `push`, and the allocation lives as
        // long as `self`.
        unsafe { std::slice::from_raw_parts(raw.ptr.as_ptr(), self.len) }
    }
}

impl Drop for BlockBuf {
    fn drop(&mut self) {
        if let (Some(raw), Some(pool)) = (self.raw.take(), &self.pool) {
            pool.give_back(raw);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_pooled_buffer_is_limited_and_goes_back_to_the_pool() {
        let pool = BufPool::new(8192, 2);
        let mut buf = pool.take_pooled(100);
        assert_eq!(buf.push(&[9; 300]), 100);
        let bytes = buf.freeze();
        assert_eq!((bytes.len(), bytes.as_ptr() as usize % ALIGN), (100, 0));
        drop(bytes);
        assert_eq!(pool.idle(), 1);
    }

    #[test]
    fn fills_up_to_the_limit_and_freezes_aligned() {
        let pool = BufPool::new(8192, 2);
        let mut buf = pool.take(8192);
        assert_eq!(buf.push(&[1; 5000]), 5000);
        assert_eq!(buf.push(&[2; 5000]), 3192, "only what fits");
        assert_eq!(buf.push(&[3; 10]), 0);
        let bytes = buf.freeze();
        assert_eq!(bytes.len(), 8192);
        assert_eq!(bytes.as_ptr() as usize % ALIGN, 0);
        assert!(bytes[..5000].iter().all(|b| *b == 1) && bytes[5000..].iter().all(|b| *b == 2));
    }

    #[test]
    fn full_block_buffers_return_to_the_pool_when_the_last_clone_drops() {
        let pool = BufPool::new(4096, 1);
        let mut buf = pool.take(4096);
        buf.push(b"abc");
        let a = buf.freeze();
        let b = a.slice(1..2);
        drop(a);
        assert_eq!(pool.idle(), 0, "a slice still holds it");
        assert_eq!(&b[..], b"b");
        drop(b);
        assert_eq!(pool.idle(), 1);
        // Reused, then a second one beyond `keep` is freed instead of kept.
        let (x, y) = (pool.take(4096), pool.take(4096));
        assert_eq!(pool.idle(), 0);
        drop((x, y));
        assert_eq!(pool.idle(), 1);
        // A short (tail) block is not pooled.
        drop(pool.take(100));
        assert_eq!(pool.idle(), 1);
    }
}
