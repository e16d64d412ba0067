//! Writing through the mount: create, open for write (staging the file), write, truncate,
//! utimens, and closing (which hands the file to the write-back driver, `writeback.rs`).
//! Directory operations (mkdir, rmdir, unlink, rename) are single Box calls applied to the
//! caches; on a file that is not in Box yet they act on the journal only, and a file not in
//! Box yet renamed over another file becomes that file's next version (write-temp-then-rename
//! costs one upload, and the Box file keeps its id and history).
//!
//! POSIX attributes (`chmod`, `chown`, a directory's mtime, the mode and owner a file is
//! created with, symlinks, FIFOs and device nodes) are staged too: the attributes an item
//! should have go into its journal entry (one of attributes alone when nothing else is
//! pending, so a `chmod` never downloads or uploads content) and the driver stores them with
//! one metadata call (`posix.rs`).
//!
//! Every operation first checks that the user's rights in Box allow it (`rights.rs`), before
//! anything is staged, queued or sent.
//!
//! A staged entry takes a new writer only while it is the file's entry in the staged map
//! (checked under the map's lock, which the driver holds to unstage a finished entry), so
//! no write ever lands in an entry that already left.

use super::dotbox::is_virtual;
use super::error::{VfsError, VfsResult};
use super::fs::content_version;
use super::fs::{Fs, Handle};
use super::meta::inode::{Ino, Meta, Node, NodeKind};
use super::meta::listings::DirEntry;
use super::meta::names::check_name;
use super::meta::posix::{permission_bits, PendingAttrs, Posix, Special};
use super::meta::rights::Op;
use super::meta::stored::{Keys, Stored};
use super::read::version::ContentVersion;
use super::time::nanos;
use super::write::journal::{Entry, Record};
use super::write::staging::{StageState, Staged};
use super::write::upload_state::Upload;
use super::Attr;
use boxfs_api::model::Item;
use boxfs_io::direct_io::DirectFile;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

fn random_key() -> String {
    let mut b = [0u8; 12];
    rand::fill(&mut b[..]);
    hex::encode(b)
}

/// Who asks for a new file, directory or link (it becomes the owner, unless it is the user
/// the mount runs as: then the mount's `uid`/`gid` apply).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
}

/// A change of mode, owner or group (`chmod`, `chown`, `chgrp`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OwnerChange {
    /// The new mode (file type bits are ignored).
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

impl OwnerChange {
    fn is_empty(&self) -> bool {
        *self == OwnerChange::default()
    }
}

impl Fs {
    /// Fails with `EEXIST` when `name` is taken in `parent`, case-insensitively (Box's rule).
    /// In a folder the user may not list, Box decides at upload time.
    async fn check_free(&self, parent: Ino, name: &str, except: Option<Ino>) -> VfsResult<()> {
        check_name(name)?;
        self.refuse_dot_box_name(parent, name)?;
        let listing = match self.listing(parent).await {
            Err(VfsError::Denied) => return Ok(()),
            other => other?,
        };
        match listing.find_folded(name) {
            Some(e) if Some(e.ino) != except => Err(VfsError::Exists),
            _ => Ok(()),
        }
    }

    fn box_id_of_dir(&self, ino: Ino) -> VfsResult<String> {
        let node = self.inodes().get(ino).ok_or(VfsError::NotFound)?;
        match node.kind {
            NodeKind::Dir => Ok(node.box_id),
            _ => Err(VfsError::NotDir),
        }
    }

    /// Stages `ino` (once): a journal record and a data file holding its full content (none
    /// of it when it is to be truncated).
    async fn stage(&self, ino: Ino, truncate: bool) -> VfsResult<Arc<Staged>> {
        let node = self.inodes().get(ino).ok_or(VfsError::NotFound)?;
        if node.kind != NodeKind::File {
            return Err(if node.kind == NodeKind::Dir { VfsError::IsDir } else { VfsError::ReadOnly });
        }
        if let Some(s) = self.staged().get(ino) {
            if !s.has_content() {
                self.attach_content(&s, &node, truncate).await?;
            }
            return Ok(s);
        }
        let key = random_key();
        let file = self.journal().create_data(&key)?;
        let record = Record {
            base_id: Some(node.box_id.clone()),
            base_etag: node.meta.etag.clone(),
            ..Record::new(key.clone(), self.box_id_of_dir(node.parent)?, node.name.clone(), nanos(node.meta.mtime))
        };
        let size = if truncate { 0 } else { node.meta.size };
        if size > 0 {
            self.copy_remote_content(&node.box_id, &content_version(&node), size, &file).await?;
        }
        self.journal().save(&record)?;
        // Truncated, it differs from Box's content already.
        let upload = Upload::staged(self.timing(), 0, truncate && node.meta.size > 0, Instant::now());
        let state = StageState::new(record, Some(node.parent), size, node.meta.mtime, upload);
        let staged = Arc::new(Staged::new(ino, Some(file), state));
        let kept = self.staged().keep_first(staged.clone());
        if !Arc::ptr_eq(&kept, &staged) {
            staged.leave_journal(self.journal()); // staged twice at once: the other one stays
            if !kept.has_content() {
                // A chmod staged it meanwhile: its content comes through the block cache again.
                self.attach_content(&kept, &node, truncate).await?;
            }
        }
        Ok(kept)
    }

    /// Gives an entry of attributes alone the file's content (first write to a file whose
    /// mode was just changed): fetched from Box unless it is to be truncated.
    async fn attach_content(&self, staged: &Arc<Staged>, node: &Node, truncate: bool) -> VfsResult<()> {
        let key = staged.key();
        staged
            .attach_content(|| async {
                let file = self.journal().create_data(&key)?;
                let size = if truncate { 0 } else { node.meta.size };
                if size > 0 {
                    self.copy_remote_content(&node.box_id, &content_version(node), size, &file).await?;
                }
                let mut st = staged.lock();
                let r = st.edit_record();
                (r.entry, r.base_etag, r.mtime_ns) = (Entry::Content, node.meta.etag.clone(), nanos(node.meta.mtime));
                st.mtime = node.meta.mtime;
                if truncate && node.meta.size > 0 {
                    st.upload.changed(Instant::now());
                }
                Ok((file, size))
            })
            .await?;
        Ok(staged.save_record(self.journal(), false)?)
    }

    /// The file's staged entry (staged now if need be) with one more writer.
    async fn claim(&self, ino: Ino, truncate: bool) -> VfsResult<Arc<Staged>> {
        loop {
            let staged = self.stage(ino, truncate).await?;
            if self.staged().join(&staged) {
                return Ok(staged);
            }
        }
    }

    /// Fills a staging file with a file's current content, through the block cache.
    async fn copy_remote_content(
        &self,
        box_id: &str,
        version: &ContentVersion,
        size: u64,
        out: &DirectFile,
    ) -> VfsResult<()> {
        let reader = self.reader_for(box_id, version, size);
        let mut offset = 0u64;
        while offset < size {
            let chunk = reader.read(offset, 1 << 20).await?;
            if chunk.is_empty() {
                break;
            }
            out.write_all_at(&chunk, offset)?;
            offset += chunk.len() as u64;
        }
        Ok(())
    }

    /// A new local file in `parent`, shown at once and uploaded by the driver, with the
    /// attributes it is made with (mode, file type) and `writers` handles open on it.
    async fn new_file(
        &self,
        parent: Ino,
        name: &str,
        writers: u32,
        made: Posix,
        caller: Caller,
    ) -> VfsResult<Arc<Staged>> {
        self.refuse_dot_box_name(parent, name)?;
        self.check_allowed(parent, Op::Create).await?;
        self.check_free(parent, name, None).await?;
        let parent_id = self.box_id_of_dir(parent)?;
        let key = random_key();
        let file = self.journal().create_data(&key)?;
        let now = SystemTime::now();
        let node = self.inodes().insert_local(parent, name, &key, Meta::local(now));
        let want = self.keys_made(&node, made, caller);
        let attrs = (!want.is_empty()).then(|| PendingAttrs { want, base: Stored::default() });
        let record = Record { attrs, ..Record::new(key, parent_id, name.into(), nanos(now)) };
        self.journal().save(&record)?;
        let mut upload = Upload::staged(self.timing(), writers, true, Instant::now());
        if record.attrs.is_some() {
            upload.attrs_changed(Instant::now());
        }
        let staged = Arc::new(Staged::new(node.ino, Some(file), StageState::new(record, Some(parent), 0, now, upload)));
        self.staged().insert(staged.clone());
        self.edit_listing(parent, |l| {
            l.insert(DirEntry { ino: node.ino, kind: NodeKind::File, name: name.into() });
        })
        .await;
        self.inodes().add_lookup(node.ino);
        Ok(staged)
    }

    /// The attribute keys to store on a new item: what it is made with, and its owner when
    /// made by another user than the one the mount runs as; none that equal the defaults.
    fn keys_made(&self, node: &Node, mut made: Posix, caller: Caller) -> Keys {
        if caller.uid != rustix::process::geteuid().as_raw() {
            (made.uid, made.gid) = (Some(caller.uid), Some(caller.gid));
        }
        made.without_defaults(&self.config().attrs.attr(node)).to_keys()
    }

    /// `create`: a new, empty local file with `mode` that shows at once and uploads on close.
    pub async fn create(&self, parent: Ino, name: &str, mode: u32, caller: Caller) -> VfsResult<(Attr, u64)> {
        let staged = self.new_file(parent, name, 1, Posix::with_mode(mode), caller).await?;
        let fh = self.add_handle(Handle::Write(staged.clone()));
        Ok((self.attr_of(staged.ino)?, fh))
    }

    /// `symlink`: a new file whose content is `target` (what other Box apps see), marked as a
    /// link in its stored attributes (what `readlink` answers from).
    pub async fn symlink(&self, parent: Ino, name: &str, target: &str, caller: Caller) -> VfsResult<Attr> {
        let made = Posix { special: Some(Special::Symlink(target.into())), ..Posix::default() };
        let staged = self.new_file(parent, name, 0, made, caller).await?;
        staged.write_at(0, target.as_bytes())?;
        self.kick(&staged);
        self.attr_of(staged.ino)
    }

    /// `mknod`: a FIFO, socket or device node is an empty file marked with its type (and
    /// device number); a regular file is an empty file.
    pub async fn mknod(&self, parent: Ino, name: &str, mode: u32, rdev: u32, caller: Caller) -> VfsResult<Attr> {
        let special = Special::from_mknod(mode, rdev);
        if special.is_none() && mode & libc::S_IFMT != libc::S_IFREG {
            return Err(VfsError::Invalid);
        }
        let made = Posix { special, ..Posix::with_mode(mode) };
        let staged = self.new_file(parent, name, 0, made, caller).await?;
        self.kick(&staged);
        self.attr_of(staged.ino)
    }

    /// Opens for writing: stages the file (fetching its content unless truncated).
    pub async fn open_write(&self, ino: Ino, truncate: bool) -> VfsResult<u64> {
        self.check_allowed(ino, Op::Write).await?;
        self.lock_for_writer(ino).await?;
        let staged = self.claim(ino, truncate).await?;
        if truncate && staged.lock().size > 0 {
            staged.truncate(0)?;
        }
        Ok(self.add_handle(Handle::Write(staged)))
    }

    pub fn write(&self, fh: u64, offset: u64, data: &[u8]) -> VfsResult<u32> {
        match self.handle(fh)? {
            Handle::Write(s) => s.write_at(offset, data),
            _ => Err(VfsError::BadHandle),
        }
    }

    /// `fallocate`: plain allocation (which may grow the file) and `FALLOC_FL_KEEP_SIZE`;
    /// punching holes, zeroing, collapsing and inserting ranges are `EOPNOTSUPP`.
    pub fn fallocate(&self, fh: u64, offset: u64, len: u64, mode: i32) -> VfsResult<()> {
        let Handle::Write(s) = self.handle(fh)? else { return Err(VfsError::BadHandle) };
        match mode {
            0 => s.allocate(offset, len, false),
            libc::FALLOC_FL_KEEP_SIZE => s.allocate(offset, len, true),
            _ => Err(VfsError::NotSupported),
        }
    }

    /// `setattr`: size (truncate) and mtime stage the file; mode, owner and a directory's
    /// mtime (Box has no settable folder time) are stored as attributes. The account's root
    /// folder takes no metadata in Box: its mtime is kept by the mount, its mode and owner
    /// cannot change (`EPERM`), as those of web links cannot.
    pub async fn setattr(
        &self,
        ino: Ino,
        size: Option<u64>,
        mtime: Option<SystemTime>,
        owner: OwnerChange,
    ) -> VfsResult<Attr> {
        if is_virtual(ino) {
            return Err(VfsError::ReadOnly);
        }
        let node = self.inodes().get(ino).ok_or(VfsError::NotFound)?;
        let account_root = node.kind == NodeKind::Dir && node.box_id == "0";
        if (account_root || node.kind == NodeKind::Link) && !owner.is_empty() {
            return Err(VfsError::NotPermitted);
        }
        match (node.kind, mtime) {
            (NodeKind::Dir, Some(t)) if account_root => self.inodes().set_mtime(ino, t),
            (NodeKind::Dir, dir_mtime) => self.change_posix(&node, owner, dir_mtime)?,
            _ => {}
        }
        if node.kind == NodeKind::File && (size.is_some() || mtime.is_some()) {
            self.check_allowed(ino, Op::Write).await?;
            self.refuse_if_locked_by_other(ino).await?;
            let staged = self.claim(ino, size == Some(0)).await?;
            let changed = size.map_or(Ok(()), |n| staged.truncate(n));
            if let Some(t) = mtime {
                staged.set_mtime(t);
            }
            self.release_write(&staged);
            changed?;
        }
        if node.kind == NodeKind::File {
            self.change_posix(&node, owner, None)?;
        }
        self.attr_of(ino)
    }

    /// Applies a change of mode, owner, group or (a directory's) mtime to the attributes
    /// `node` is to have.
    fn change_posix(&self, node: &Node, owner: OwnerChange, dir_mtime: Option<SystemTime>) -> VfsResult<()> {
        if owner.is_empty() && dir_mtime.is_none() {
            return Ok(());
        }
        let mut posix = self.posix_of(node);
        posix.mode = owner.mode.map(permission_bits).or(posix.mode);
        posix.uid = owner.uid.or(posix.uid);
        posix.gid = owner.gid.or(posix.gid);
        posix.mtime_ns = dir_mtime.map(nanos).or(posix.mtime_ns);
        let want = posix.without_defaults(&self.config().attrs.attr(node)).to_keys();
        self.set_posix(node, want)
    }

    /// Records the attribute keys `node` should have. Nothing happens when it has them
    /// already; else they go into its staged entry (a new entry of attributes alone when none
    /// is pending), stored by the driver after the write-back delay.
    fn set_posix(&self, node: &Node, want: Keys) -> VfsResult<()> {
        let now = Instant::now();
        let mut entries = self.staged().lock();
        let staged = match entries.get(node.ino) {
            Some(staged) => {
                let mut st = staged.lock();
                let pending = st.record().attrs.clone();
                if pending.as_ref().map_or(&node.meta.stored().keys, |a| &a.want) == &want {
                    return Ok(());
                }
                let base = pending.map_or_else(|| node.meta.stored().clone(), |a| a.base);
                st.edit_record().attrs = Some(PendingAttrs { want, base });
                st.upload.attrs_changed(now);
                staged.clone()
            }
            None if node.meta.stored().keys == want => return Ok(()),
            None => {
                let entry = if node.kind == NodeKind::Dir { Entry::FolderAttrs } else { Entry::FileAttrs };
                let parent_id = self.box_id_of_dir(node.parent)?;
                let record = Record {
                    base_id: Some(node.box_id.clone()),
                    base_etag: node.meta.etag.clone(),
                    entry,
                    attrs: Some(PendingAttrs { want, base: node.meta.stored().clone() }),
                    ..Record::new(random_key(), parent_id, node.name.clone(), nanos(node.meta.mtime))
                };
                let mut upload = Upload::staged(self.timing(), 0, false, now);
                upload.attrs_changed(now);
                let state = StageState::new(record, Some(node.parent), node.meta.size, node.meta.mtime, upload);
                let staged = Arc::new(Staged::new(node.ino, None, state));
                entries.insert(staged.clone());
                staged
            }
        };
        drop(entries);
        staged.save_record(self.journal(), false)?;
        self.kick(&staged);
        Ok(())
    }

    /// A writer let go: when it was the last, the upload is due after the write-back delay.
    /// (The journal record learns the latest mtime at the next `fsync` or when the upload
    /// starts, not at every close.)
    pub fn release_write(&self, staged: &Arc<Staged>) {
        staged.lock().upload.closed(Instant::now());
        self.kick(staged);
    }

    /// `mkdir`: one Box call; a mode or owner other than the defaults follows as attributes.
    pub async fn mkdir(&self, parent: Ino, name: &str, mode: u32, caller: Caller) -> VfsResult<Attr> {
        self.refuse_dot_box_name(parent, name)?;
        self.check_allowed(parent, Op::Create).await?;
        self.check_free(parent, name, None).await?;
        let folder = self.remote().create_folder(&self.box_id_of_dir(parent)?, name).await?;
        let node = self.inodes().upsert(parent, &Item::Folder(folder));
        self.known_empty(node.ino).await; // its first create needs no listing call
        self.edit_listing(parent, |l| {
            l.insert(DirEntry { ino: node.ino, kind: NodeKind::Dir, name: name.into() });
        })
        .await;
        self.inodes().add_lookup(node.ino);
        self.set_posix(&node, self.keys_made(&node, Posix::with_mode(mode), caller))?;
        self.attr_of(node.ino)
    }

    /// Takes a removed item's staged entry out: nothing more of it is sent.
    fn unstage_removed(&self, ino: Ino) -> Option<Arc<Staged>> {
        let staged = self.staged().remove(ino)?;
        staged.lock().upload.remove();
        self.kick(&staged);
        Some(staged)
    }

    pub async fn rmdir(&self, parent: Ino, name: &str) -> VfsResult<()> {
        if self.is_dot_box_entry(parent, name) {
            return self.dot_box_remove(parent, name, true).await;
        }
        let entry = self.find_entry(parent, name).await?;
        if entry.kind != NodeKind::Dir {
            return Err(VfsError::NotDir);
        }
        self.check_allowed(entry.ino, Op::Delete).await?;
        if !self.listing(entry.ino).await?.entries.is_empty() {
            return Err(VfsError::NotEmpty);
        }
        let node = self.inodes().get(entry.ino).ok_or(VfsError::NotFound)?;
        self.remote().delete_folder(&node.box_id, false, None).await?;
        self.unstage_removed(entry.ino);
        self.edit_listing(parent, |l| {
            l.remove_named(&entry.name, |x| x.ino == entry.ino);
        })
        .await;
        self.forget_listing(entry.ino).await;
        self.dot_box().trash_changed();
        self.pins_touched(&[entry.ino, parent]);
        Ok(())
    }

    pub async fn unlink(&self, parent: Ino, name: &str) -> VfsResult<()> {
        if self.is_dot_box_entry(parent, name) {
            return self.dot_box_remove(parent, name, false).await;
        }
        let entry = self.find_entry(parent, name).await?;
        if entry.kind == NodeKind::Dir {
            return Err(VfsError::IsDir);
        }
        self.check_allowed(entry.ino, Op::Delete).await?;
        let node = self.inodes().get(entry.ino).ok_or(VfsError::NotFound)?;
        let only_local = self.unstage_removed(entry.ino).is_some_and(|s| s.lock().only_local());
        if !only_local {
            match node.kind {
                NodeKind::Link => self.remote().delete_web_link(&node.box_id).await?,
                _ => self.remote().delete_file(&node.box_id, None).await?,
            }
            self.dot_box().trash_changed();
        }
        self.edit_listing(parent, |l| {
            l.remove_named(&entry.name, |x| x.ino == entry.ino);
        })
        .await;
        self.pins_touched(&[entry.ino, parent]);
        Ok(())
    }

    /// Renames within or across folders; an existing file target is replaced (it goes to the
    /// Box trash), unless the renamed file is not in Box yet: then it becomes the target's
    /// next version (see [`Fs::take_over`]). `noreplace` makes an existing target `EEXIST`.
    pub async fn rename(
        &self,
        parent: Ino,
        name: &str,
        new_parent: Ino,
        new_name: &str,
        noreplace: bool,
    ) -> VfsResult<()> {
        if self.is_dot_box_entry(parent, name) {
            return self.dot_box_rename(parent, name, new_parent, new_name).await;
        }
        self.refuse_dot_box_name(new_parent, new_name)?;
        let entry = self.find_entry(parent, name).await?;
        check_name(new_name)?;
        if new_name != name {
            self.check_allowed(entry.ino, Op::Rename).await?;
        }
        if new_parent != parent {
            self.check_allowed(entry.ino, Op::Delete).await?;
            self.check_allowed(new_parent, Op::Create).await?;
        }
        let mut took_over = false;
        if let Some(target) = self.listing(new_parent).await?.find(new_name).cloned() {
            if target.ino == entry.ino {
                return Ok(());
            }
            if noreplace {
                return Err(VfsError::Exists);
            }
            match (entry.kind, target.kind) {
                (NodeKind::Dir, NodeKind::Dir) => self.rmdir(new_parent, new_name).await?,
                (NodeKind::Dir, _) => return Err(VfsError::NotDir),
                (_, NodeKind::Dir) => return Err(VfsError::IsDir),
                (NodeKind::File, NodeKind::File)
                    if self.check_allowed(target.ino, Op::Write).await.is_ok()
                        && self.take_over(entry.ino, target.ino) =>
                {
                    took_over = true;
                    self.edit_listing(new_parent, |l| {
                        l.remove_named(&target.name, |x| x.ino == target.ino);
                    })
                    .await;
                }
                _ => self.unlink(new_parent, new_name).await?,
            }
        }
        self.check_free(new_parent, new_name, Some(entry.ino)).await?;
        let node = self.inodes().get(entry.ino).ok_or(VfsError::NotFound)?;
        let new_parent_id = self.box_id_of_dir(new_parent)?;
        let staged = self.staged().get(entry.ino);
        let in_box = !took_over && !staged.as_ref().is_some_and(|s| s.lock().only_local());
        if in_box {
            let name_arg = (new_name != name).then_some(new_name);
            let parent_arg = (new_parent != parent).then_some(new_parent_id.as_str());
            let item = match node.kind {
                NodeKind::Dir => {
                    Item::Folder(self.remote().update_folder(&node.box_id, name_arg, parent_arg, None).await?)
                }
                _ => Item::File(self.remote().update_file(&node.box_id, name_arg, parent_arg, None).await?),
            };
            self.inodes().upsert(new_parent, &item);
        }
        if let Some(s) = &staged {
            {
                let mut st = s.lock();
                let r = st.edit_record();
                (r.name, r.parent_id) = (new_name.to_string(), new_parent_id);
                st.parent = Some(new_parent);
            }
            s.save_record(self.journal(), false)?;
        }
        self.inodes().set_location(entry.ino, new_parent, new_name);
        self.edit_listing(parent, |l| {
            l.remove_named(&entry.name, |x| x.ino == entry.ino);
        })
        .await;
        self.edit_listing(new_parent, |l| {
            l.insert(DirEntry { ino: entry.ino, kind: entry.kind, name: new_name.into() });
        })
        .await;
        // Moved into or out of a pinned folder, or a pinned item moved.
        self.pins_touched(&[entry.ino, parent, new_parent]);
        Ok(())
    }

    /// A file not in Box yet, whose upload has not started, renamed over file `target`
    /// (write-temp-then-rename: editors, rsync, git, `sed -i`) becomes `target`'s next version
    /// instead of a new file: no delete, no upload of its own beyond that version, and the Box
    /// file keeps its id, shared links and history; the target's stored attributes give way
    /// to this file's (one metadata call, none when they are the same). `target`'s own pending
    /// change is dropped (or, when its upload runs, this one goes up after it, on what it
    /// landed). False when the rename must go the plain way (the file is in Box, or its
    /// upload runs).
    fn take_over(&self, ino: Ino, target: Ino) -> bool {
        let Some(target_node) = self.inodes().get(target) else { return false };
        let mut entries = self.staged().lock();
        let Some(staged) = entries.get(ino) else { return false };
        let mut st = staged.lock();
        if !st.only_local() || st.upload.in_flight() {
            return false;
        }
        let replaced = entries.remove(target);
        let (base_id, base_etag, attrs_base) = match &replaced {
            Some(old) => {
                let mut old_st = old.lock();
                old_st.upload.remove();
                if old_st.upload.in_flight() {
                    old_st.replaced_by = Some(Arc::downgrade(&staged));
                    st.after = Some(old.clone());
                }
                let r = old_st.record();
                let attrs_base = r.attrs.as_ref().map(|a| a.base.clone());
                (r.base_id.clone(), r.base_etag.clone(), attrs_base)
            }
            None => (Some(target_node.box_id.clone()), target_node.meta.etag.clone(), None),
        };
        if let Some(id) = &base_id {
            self.inodes().rebind_file(ino, id);
        }
        // The target's stored attributes become this file's, which it replaces.
        let attrs_base = attrs_base.unwrap_or_else(|| target_node.meta.stored().clone());
        let want = st.record().attrs.as_ref().map(|a| a.want.clone()).unwrap_or_default();
        let r = st.edit_record();
        (r.base_id, r.base_etag) = (base_id, base_etag);
        if !want.is_empty() || !attrs_base.keys.is_empty() {
            r.attrs = Some(PendingAttrs { want, base: attrs_base });
            st.upload.attrs_changed(Instant::now());
        }
        drop((st, entries));
        if let Some(old) = replaced {
            self.kick(&old);
        }
        true
    }
}
