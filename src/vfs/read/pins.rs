//! The pins: Box items (files and folders) whose content is kept on this device, with how far
//! each one's download has come. The list is persisted in `pins.json` in the cache dir
//! (replaced atomically and durably at every change) and read when the mount starts. A folder
//! pin covers whatever is below it at any time: nothing is stored per child, so what is created
//! or moved in later is pinned by its position.
//!
//! What the pins' content is, in blocks, is the block cache's business (pinned contents, see
//! `blocks.rs`); the facade's pin worker (`pinning.rs`) walks the pinned trees, pins each
//! file's current content in the cache and downloads what is missing. This list also carries
//! the worker's wake-up signal.
//!
//! Invariants: one pin per Box item; the file on disk always holds the whole list as it was
//! after a complete change.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use tokio::sync::Notify;

const PINS_FILE: &str = "pins.json";

/// What a pin is: a file, or a folder with everything below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PinKind {
    File,
    Folder,
}

/// One pinned item.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pin {
    /// Box id of the item.
    pub id: String,
    pub kind: PinKind,
    /// Where it is in the mount (relative to its root), as last seen; for display, and to find
    /// the item again at the next mount.
    pub path: String,
}

/// Where the download of a pin stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinState {
    Downloading,
    Complete,
    Failed(String),
}

/// How far a pin's content is on this device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinProgress {
    pub files_present: u64,
    pub files_total: u64,
    pub bytes_present: u64,
    pub bytes_total: u64,
    pub state: PinState,
}

impl PinProgress {
    /// Nothing known yet: a pin just made, or not walked since the mount started.
    pub fn starting() -> PinProgress {
        PinProgress { files_present: 0, files_total: 0, bytes_present: 0, bytes_total: 0, state: PinState::Downloading }
    }
}

/// A pin and its progress, as `boxfs status` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinInfo {
    pub pin: Pin,
    pub progress: PinProgress,
}

/// A pin that cannot be made or removed.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("cannot pin {path}: it needs {}, the cache disk ({}) has {} free", human(*need), dir.display(), human(*free))]
    NoRoom { path: String, need: u64, free: u64, dir: PathBuf },
    #[error("{path} is pinned through the pinned folder {folder}; unpin that folder instead")]
    Inherited { path: String, folder: String },
    #[error("{0} is not pinned")]
    NotPinned(String),
    #[error("only files and folders can be pinned ({0} is neither)")]
    NotPinnable(String),
    #[error("the pins file: {0}")]
    Io(#[from] io::Error),
}

/// `1536` → `1.5 KiB`.
fn human(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let (mut value, mut unit) = (n as f64, 0);
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{n} B"),
        _ => format!("{value:.1} {}", UNITS[unit]),
    }
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct PinsFile {
    pins: Vec<Pin>,
}

struct State {
    /// Every pin with its progress.
    pins: Vec<PinInfo>,
    /// Counts the changes of `pins` (pins added or removed).
    generation: u64,
}

impl State {
    fn position(&self, kind: PinKind, id: &str) -> Option<usize> {
        self.pins.iter().position(|p| p.pin.kind == kind && p.pin.id == id)
    }

    fn find(&self, kind: PinKind, id: &str) -> Option<&PinInfo> {
        self.position(kind, id).map(|at| &self.pins[at])
    }

    fn find_mut(&mut self, kind: PinKind, id: &str) -> Option<&mut PinInfo> {
        self.position(kind, id).map(|at| &mut self.pins[at])
    }
}

/// The pin list of one mount. `Send + Sync`.
pub struct PinList {
    /// `None`: kept in memory only (tests).
    file: Option<PathBuf>,
    state: Mutex<State>,
    wake: Notify,
}

impl PinList {
    /// The list kept in `dir` (read now; empty when there is no file yet).
    pub fn open(dir: &Path) -> io::Result<PinList> {
        let file = dir.join(PINS_FILE);
        let pins = match std::fs::read(&file) {
            Ok(bytes) => {
                serde_json::from_slice::<PinsFile>(&bytes)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
                    .pins
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        Ok(PinList::with(Some(file), pins))
    }

    /// A list that is not persisted.
    pub fn in_memory() -> PinList {
        PinList::with(None, Vec::new())
    }

    fn with(file: Option<PathBuf>, pins: Vec<Pin>) -> PinList {
        let pins = pins.into_iter().map(|pin| PinInfo { pin, progress: PinProgress::starting() }).collect();
        PinList { file, state: Mutex::new(State { pins, generation: 0 }), wake: Notify::new() }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn save(&self, st: &State) -> io::Result<()> {
        let Some(file) = &self.file else { return Ok(()) };
        let pins = st.pins.iter().map(|p| p.pin.clone()).collect();
        let bytes = serde_json::to_vec_pretty(&PinsFile { pins }).map_err(io::Error::other)?;
        boxfs_io::atomic_file::write_atomic(file, &bytes)
    }

    /// Every pin, and the list's generation (see [`PinList::generation`]).
    pub fn all(&self) -> (Vec<Pin>, u64) {
        let st = self.lock();
        (st.pins.iter().map(|p| p.pin.clone()).collect(), st.generation)
    }

    /// A number that changes whenever a pin is added or removed.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    pub fn is_empty(&self) -> bool {
        self.lock().pins.is_empty()
    }

    /// The pin of item `id`, if it is pinned itself.
    pub fn get(&self, kind: PinKind, id: &str) -> Option<Pin> {
        self.lock().find(kind, id).map(|p| p.pin.clone())
    }

    /// Adds a pin (its progress starts over); false if the item was pinned already.
    pub fn add(&self, pin: Pin) -> io::Result<bool> {
        let mut st = self.lock();
        if st.position(pin.kind, &pin.id).is_some() {
            return Ok(false);
        }
        st.pins.push(PinInfo { pin, progress: PinProgress::starting() });
        if let Err(e) = self.save(&st) {
            st.pins.pop();
            return Err(e);
        }
        st.generation += 1;
        Ok(true)
    }

    /// Removes the pin of item `id`; false if it was not pinned.
    pub fn remove(&self, kind: PinKind, id: &str) -> io::Result<bool> {
        let mut st = self.lock();
        let Some(at) = st.position(kind, id) else { return Ok(false) };
        let pin = st.pins.remove(at);
        if let Err(e) = self.save(&st) {
            st.pins.insert(at, pin);
            return Err(e);
        }
        st.generation += 1;
        Ok(true)
    }

    /// Records where a pinned item is now (persisted when it changed).
    pub fn set_path(&self, kind: PinKind, id: &str, path: &str) {
        let mut st = self.lock();
        let Some(PinInfo { pin, .. }) = st.find_mut(kind, id) else { return };
        if pin.path == path {
            return;
        }
        pin.path = path.to_string();
        if let Err(e) = self.save(&st) {
            tracing::warn!(error = %e, "could not save the pins file");
        }
    }

    /// Records a pin's progress (ignored for a pin removed meanwhile).
    pub fn set_progress(&self, kind: PinKind, id: &str, progress: PinProgress) {
        if let Some(p) = self.lock().find_mut(kind, id) {
            p.progress = progress;
        }
    }

    /// A pin's progress.
    pub fn progress(&self, kind: PinKind, id: &str) -> Option<PinProgress> {
        self.lock().find(kind, id).map(|p| p.progress.clone())
    }

    /// The pin of item `id` with its progress.
    pub fn info(&self, kind: PinKind, id: &str) -> Option<PinInfo> {
        self.lock().find(kind, id).cloned()
    }

    /// Every pin with its progress.
    pub fn report(&self) -> Vec<PinInfo> {
        self.lock().pins.clone()
    }

    /// Asks the worker for a run (runs asked for while one is under way make one more).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Waits until a run is asked for.
    pub async fn woken(&self) {
        self.wake.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(id: &str, kind: PinKind) -> Pin {
        Pin { id: id.into(), kind, path: format!("p{id}") }
    }

    #[test]
    fn pins_persist_and_are_one_per_item() {
        let tmp = tempfile::tempdir().unwrap();
        let list = PinList::open(tmp.path()).unwrap();
        assert!(list.add(pin("1", PinKind::Folder)).unwrap());
        assert!(!list.add(pin("1", PinKind::Folder)).unwrap());
        assert!(list.add(pin("1", PinKind::File)).unwrap(), "file and folder ids are separate spaces");
        assert!(list.add(pin("2", PinKind::File)).unwrap());
        assert!(list.remove(PinKind::File, "2").unwrap());
        assert!(!list.remove(PinKind::File, "2").unwrap());
        list.set_path(PinKind::Folder, "1", "moved/here");
        let again = PinList::open(tmp.path()).unwrap();
        let mut moved = pin("1", PinKind::Folder);
        moved.path = "moved/here".into();
        assert_eq!(again.all().0, vec![moved, pin("1", PinKind::File)]);
        assert_eq!(again.progress(PinKind::File, "1").unwrap().state, PinState::Downloading);
    }

    #[test]
    fn the_refusal_says_what_is_needed_and_what_is_free() {
        let e = PinError::NoRoom { path: "Docs".into(), need: 3 << 29, free: 5 << 20, dir: "/c".into() };
        assert_eq!(e.to_string(), "cannot pin Docs: it needs 1.5 GiB, the cache disk (/c) has 5.0 MiB free");
    }
}
