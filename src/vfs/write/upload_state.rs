//! One staged entry's way to Box, as a state machine without I/O. The write-back driver
//! (`writeback.rs`) tells it what happens (writers open and close, the content or the stored
//! POSIX attributes change, a sync hurries it, it is unlinked, a send ends) and asks it what to
//! do next ([`Upload::next`]); a journal record left by an earlier run enters it in the state
//! the record says ([`Upload::recovered`]). Time comes in as an argument, so every transition
//! is unit-tested without FUSE, HTTP or sleeping.
//!
//! An entry carries a file's content, its attributes (mode, owner, symlink target, a folder's
//! mtime: one metadata call), or both. An entry of attributes alone (a `chmod`) has no content
//! to send: its file is never downloaded or uploaded again.
//!
//! ```text
//!  open/change ─► Open ──last close──► Waiting{due} ──due passed──► Uploading{gen} ──► Committing{gen}
//!                  ▲                       ▲   ▲   │                    │   │                │
//!                  │ (a writer is open)    │   │   │ attributes only    │   │ transient      │ committed
//!                  │                       │   │   ▼                    │   │                │
//!                  │                       │   │  StoringAttrs{gen} ◄───┼───┼── attributes ◄─┤
//!                  │                       │   └── Retrying{due} ◄──────┘   │    pending     │
//!                  └───────────────────────┴── changed meanwhile: one more send ◄────────────┤
//!                                                                                            ▼
//!                                                                   InBox (leaves the journal)
//!  exits: Failed (Box refuses for good; data kept), Held (maybe torn after a system crash;
//!  data kept), Removed (unlinked or replaced before it reached Box: nothing is sent).
//!  A 412 (Box has a newer version) turns the entry into a conflicted copy that uploads next.
//! ```
//!
//! Invariants:
//! - A send starts only from `Waiting`/`Retrying` once the due time passed, and there is at
//!   most one per entry at a time: changes made meanwhile coalesce into exactly one more send,
//!   of the latest bytes or attributes, after the one in flight ends.
//! - Content goes first, attributes after it (a new file must exist before metadata can be put
//!   on it), at once: content and attributes changed together cost one upload and one
//!   metadata call.
//! - Every change pushes the due time to `delay` after it, so an entry changed again and again
//!   before its send starts is sent once.
//! - A generation (of content, or of attributes) counts as in Box only when a send of exactly
//!   that generation committed.
//! - `InBox` and `Removed` are final: the entry leaves the journal and the driver stops.
//! - `Held` entries are never sent until released ([`Upload::release`]).
//! - A sync is never lost: one made while a send runs makes what is still pending when that
//!   send ends due at once, also with a writer open (the sync waits for it).
//! - Transient failures back off exponentially ([`Backoff`], the one retry policy of uploads).

use std::time::{Duration, Instant};

/// Where a staged file's upload stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// A writer is open: nothing is due until the last one closes (or a sync hurries it).
    Open,
    /// Waiting out the write-back delay (or a retry's backoff); may go from `due` on.
    Waiting { due: Instant },
    /// The bytes of generation `gen` are going up.
    Uploading { gen: u64 },
    /// All bytes of `gen` are up; Box is committing them.
    Committing { gen: u64 },
    /// The attributes of attribute generation `gen` are being stored (one metadata call).
    StoringAttrs { gen: u64 },
    /// The last attempt failed transiently; the next one may go from `due` on.
    Retrying { due: Instant, error: String },
    /// Content of the latest generation is in Box: done.
    InBox,
    /// Box refused it for good; the data stays in the journal.
    Failed(String),
    /// Staged before a system crash and never flushed to disk: maybe torn, kept out of Box
    /// until the user decides.
    Held(String),
    /// Unlinked or replaced before it reached Box: done, nothing sent.
    Removed,
}

/// What the driver should do now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Nothing until something happens (a close, a sync, a change, a release).
    Idle,
    /// Nothing before this instant (or until something happens).
    Sleep(Instant),
    /// Upload the current content (then call [`Upload::start`]).
    Upload,
    /// Store the current attributes (then call [`Upload::start_attrs`]).
    StoreAttrs,
    /// A send is running.
    Busy,
    /// Finished (`InBox` or `Removed`): unstage.
    Finished,
}

/// How an upload attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The generation sent is in Box (or Box already had exactly these bytes).
    Committed,
    /// 412 on a version whose base changed in Box (or 409: the name was taken meanwhile): the
    /// driver turned the entry into a conflicted copy (a new file), which goes up at once.
    Conflict,
    /// The driver pointed the entry at another target (its Box file was deleted meanwhile: it
    /// goes up as a new file), which goes up at once.
    Retarget,
    /// Worth another attempt later (network, 429, 5xx).
    Transient(String),
    /// Box refuses it; another attempt would fail the same way.
    Refused(String),
}

/// The one backoff of uploads: exponential from `base`, capped at `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff { base: Duration::from_millis(500), max: Duration::from_secs(60) }
    }
}

impl Backoff {
    /// The wait before attempt `failures + 1`, after `failures` transient failures in a row.
    pub fn wait(&self, failures: u32) -> Duration {
        self.base.saturating_mul(1u32 << failures.saturating_sub(1).min(16)).min(self.max)
    }
}

/// The timing an upload follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// From the last change (or close) to the upload.
    pub delay: Duration,
    pub backoff: Backoff,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing { delay: Duration::from_secs(1), backoff: Backoff::default() }
    }
}

/// How far an entry's changes went at some moment: content and attribute generations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    content: u64,
    attrs: u64,
}

/// One staged entry's state (see the module doc).
#[derive(Clone, Debug)]
pub struct Upload {
    state: State,
    timing: Timing,
    /// Bumped by every change of the content (or of its mtime).
    generation: u64,
    /// The newest generation known to be in Box (0: none).
    committed: u64,
    /// Bumped by every change of the attributes to store.
    attrs: u64,
    /// The newest attribute generation known to be in Box.
    attrs_stored: u64,
    /// Open handles that may write.
    writers: u32,
    /// Transient failures in a row.
    failures: u32,
    /// The last change, which the next upload waits `delay` after.
    changed_at: Instant,
    /// Unlinked or replaced while an upload ran: whatever lands is not the file any more.
    removed: bool,
    /// The entry became a conflicted copy (after a 412).
    conflicted: bool,
    /// A sync asked for it since the last send started: what is pending when a send ends goes
    /// up at once, also with a writer open (the sync waits for it).
    hurried: bool,
}

impl Upload {
    /// A file just staged here, with `writers` handles open on it: `new` when it is not in
    /// Box yet (so it goes up even unchanged), else a copy of Box's content that goes up only
    /// once it changes.
    pub fn staged(timing: Timing, writers: u32, new: bool, now: Instant) -> Upload {
        let state = match (writers, new) {
            (0, true) => State::Waiting { due: now + timing.delay },
            (0, false) => State::InBox,
            _ => State::Open,
        };
        Upload {
            state,
            timing,
            generation: u64::from(new),
            committed: 0,
            attrs: 0,
            attrs_stored: 0,
            writers,
            failures: 0,
            changed_at: now,
            removed: false,
            conflicted: false,
            hurried: false,
        }
    }

    /// An entry an earlier run left in the journal, with content and/or attributes to send:
    /// due at once, unless `held` says why it must wait for the user.
    pub fn recovered(timing: Timing, held: Option<String>, content: bool, attrs: bool, now: Instant) -> Upload {
        let mut u = Upload::staged(timing, 0, content, now);
        u.attrs = u64::from(attrs);
        u.state = match held {
            Some(why) => State::Held(why),
            None if u.pending() => State::Waiting { due: now },
            None => State::InBox,
        };
        u
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn writers(&self) -> u32 {
        self.writers
    }

    /// Content up to this generation is in Box.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// Attribute changes made so far (a generation counter).
    pub fn attrs_generation(&self) -> u64 {
        self.attrs
    }

    /// Attributes up to this generation are in Box.
    pub fn attrs_stored(&self) -> u64 {
        self.attrs_stored
    }

    /// The changes made so far, to wait for ([`Upload::reached`]).
    pub fn mark(&self) -> Mark {
        Mark { content: self.generation, attrs: self.attrs }
    }

    /// The changes up to `mark` are in Box.
    pub fn reached(&self, mark: Mark) -> bool {
        self.committed >= mark.content && self.attrs_stored >= mark.attrs
    }

    /// Content or attributes not yet in Box.
    fn pending(&self) -> bool {
        self.generation != self.committed || self.attrs != self.attrs_stored
    }

    pub fn is_conflicted_copy(&self) -> bool {
        self.conflicted
    }

    /// Kept out of Box until the user decides (after a system crash).
    pub fn is_held(&self) -> bool {
        matches!(self.state, State::Held(_))
    }

    /// Unlinked or replaced: whatever an upload in flight lands is not this file any more.
    pub fn is_removed(&self) -> bool {
        self.removed
    }

    /// A send is running (bytes in flight, a commit pending, or attributes being stored).
    pub fn in_flight(&self) -> bool {
        matches!(self.state, State::Uploading { .. } | State::Committing { .. } | State::StoringAttrs { .. })
    }

    /// Finished, or stopped until the user acts: nothing more will happen by itself.
    pub fn settled(&self) -> bool {
        matches!(self.state, State::InBox | State::Removed | State::Failed(_) | State::Held(_))
    }

    /// The content (or its mtime) changed.
    pub fn changed(&mut self, now: Instant) {
        self.generation += 1;
        self.touched(now);
    }

    /// The attributes to store changed.
    pub fn attrs_changed(&mut self, now: Instant) {
        self.attrs += 1;
        self.touched(now);
    }

    fn touched(&mut self, now: Instant) {
        self.changed_at = now;
        self.failures = 0;
        match self.state {
            State::Waiting { .. } | State::Retrying { .. } | State::Failed(_) | State::InBox => self.wait_or_open(now),
            State::Open
            | State::Uploading { .. }
            | State::Committing { .. }
            | State::StoringAttrs { .. }
            | State::Held(_)
            | State::Removed => {}
        }
    }

    /// A handle that may write was opened.
    pub fn opened(&mut self) {
        self.writers += 1;
        if matches!(self.state, State::Waiting { .. } | State::Retrying { .. } | State::InBox) {
            self.state = State::Open;
        }
    }

    /// A handle that may write was closed.
    pub fn closed(&mut self, now: Instant) {
        self.writers = self.writers.saturating_sub(1);
        if self.writers == 0 && self.state == State::Open {
            self.wait_or_open(now);
        }
    }

    /// A sync wants it in Box now: skip the delay (also with writers open) and try a failed
    /// upload once more. Held entries wait for [`Upload::release`].
    pub fn hurry(&mut self, now: Instant) {
        self.hurried = true;
        match self.state {
            State::Open | State::Waiting { .. } | State::Retrying { .. } | State::Failed(_) if self.pending() => {
                self.state = State::Waiting { due: now };
            }
            State::Open | State::Waiting { .. } | State::Retrying { .. } | State::Failed(_) => self.wait_or_open(now),
            _ => {}
        }
    }

    /// Unlinked, or replaced by a rename: nothing more is to be sent. An upload in flight
    /// ends as `Removed` whatever its outcome.
    pub fn remove(&mut self) {
        self.removed = true;
        if !self.in_flight() {
            self.state = State::Removed;
        }
    }

    /// The user decided to upload a held entry after all.
    pub fn release(&mut self, now: Instant) {
        if matches!(self.state, State::Held(_)) {
            self.state = State::Waiting { due: now };
        }
    }

    /// What to do now.
    pub fn next(&self, now: Instant) -> Next {
        match &self.state {
            State::Open | State::Failed(_) | State::Held(_) => Next::Idle,
            State::Waiting { due } | State::Retrying { due, .. } if *due > now => Next::Sleep(*due),
            State::Waiting { .. } | State::Retrying { .. } if self.generation != self.committed => Next::Upload,
            State::Waiting { .. } | State::Retrying { .. } => Next::StoreAttrs,
            State::Uploading { .. } | State::Committing { .. } | State::StoringAttrs { .. } => Next::Busy,
            State::InBox | State::Removed => Next::Finished,
        }
    }

    /// An upload of the current content starts; returns the generation it sends.
    pub fn start(&mut self) -> u64 {
        debug_assert!(matches!(self.state, State::Waiting { .. } | State::Retrying { .. }), "{:?}", self.state);
        self.hurried = false;
        self.state = State::Uploading { gen: self.generation };
        self.generation
    }

    /// Storing the current attributes starts; returns the attribute generation it sends.
    pub fn start_attrs(&mut self) -> u64 {
        debug_assert!(matches!(self.state, State::Waiting { .. } | State::Retrying { .. }), "{:?}", self.state);
        self.hurried = false;
        self.state = State::StoringAttrs { gen: self.attrs };
        self.attrs
    }

    /// Every byte is up; the commit runs.
    pub fn committing(&mut self) {
        if let State::Uploading { gen } = self.state {
            self.state = State::Committing { gen };
        }
    }

    /// The send that [`Upload::start`] or [`Upload::start_attrs`] began ended with `outcome`.
    pub fn finished(&mut self, outcome: Outcome, now: Instant) {
        let (sent, attrs) = match self.state {
            State::Uploading { gen } | State::Committing { gen } => (gen, false),
            State::StoringAttrs { gen } => (gen, true),
            _ => return,
        };
        if self.removed {
            self.state = State::Removed;
            return;
        }
        let latest = if attrs { self.attrs } else { self.generation };
        match outcome {
            Outcome::Committed if attrs => {
                self.attrs_stored = self.attrs_stored.max(sent);
                self.failures = 0;
                self.after_send(now);
            }
            Outcome::Committed => {
                self.committed = self.committed.max(sent);
                self.failures = 0;
                // Attributes changed with the content go right after it, not a delay later.
                match self.attrs != self.attrs_stored && self.writers == 0 {
                    true => self.state = State::Waiting { due: now },
                    false => self.after_send(now),
                }
            }
            // The content goes to a new file, which has none of the attributes yet.
            Outcome::Conflict | Outcome::Retarget => {
                self.conflicted |= outcome == Outcome::Conflict;
                self.committed = 0;
                self.attrs_stored = 0;
                self.state = State::Waiting { due: now };
            }
            Outcome::Transient(error) => {
                self.failures += 1;
                self.state = State::Retrying { due: now + self.timing.backoff.wait(self.failures), error };
            }
            // Changed while it was sent (a digest mismatch, say): send the new content.
            Outcome::Refused(_) if latest != sent => self.after_send(now),
            Outcome::Refused(error) => self.state = State::Failed(error),
        }
    }

    /// After a send that leaves the entry unsettled: what a sync asked for meanwhile is due at
    /// once, writers or not; else as after any change.
    fn after_send(&mut self, now: Instant) {
        match self.hurried && self.pending() {
            true => self.state = State::Waiting { due: now },
            false => self.wait_or_open(now),
        }
    }

    /// After a change, a close or a commit: in Box if nothing newer is staged and nobody
    /// writes; else open, or waiting `delay` after the last change.
    fn wait_or_open(&mut self, now: Instant) {
        self.state = if self.writers > 0 {
            State::Open
        } else if !self.pending() {
            State::InBox
        } else {
            State::Waiting { due: (self.changed_at + self.timing.delay).max(now) }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELAY: Duration = Duration::from_secs(1);

    fn timing() -> Timing {
        Timing { delay: DELAY, backoff: Backoff { base: Duration::from_millis(500), max: Duration::from_secs(4) } }
    }

    fn secs(t0: Instant, s: f64) -> Instant {
        t0 + Duration::from_secs_f64(s)
    }

    #[test]
    fn a_closed_file_uploads_once_after_the_delay_and_is_then_in_box() {
        let t0 = Instant::now();
        let mut u = Upload::staged(timing(), 1, true, t0);
        assert_eq!(u.next(t0), Next::Idle, "nothing is due while a writer is open");
        u.changed(t0);
        u.closed(t0);
        assert_eq!(u.next(t0), Next::Sleep(t0 + DELAY));
        assert_eq!(u.next(secs(t0, 1.0)), Next::Upload);
        let gen = u.start();
        assert_eq!(u.next(secs(t0, 1.0)), Next::Busy);
        u.committing();
        assert_eq!(u.state(), &State::Committing { gen });
        u.finished(Outcome::Committed, secs(t0, 1.2));
        assert_eq!((u.state(), u.committed()), (&State::InBox, gen));
        assert_eq!(u.next(secs(t0, 1.2)), Next::Finished);
    }

    #[test]
    fn changes_before_the_upload_starts_coalesce_into_one_upload() {
        let t0 = Instant::now();
        let mut u = Upload::staged(timing(), 0, true, t0);
        for i in 1..=10 {
            u.changed(secs(t0, 0.5 * f64::from(i)));
        }
        assert_eq!(u.next(secs(t0, 5.2)), Next::Sleep(secs(t0, 6.0)), "the delay runs from the last change");
        assert_eq!(u.next(secs(t0, 6.0)), Next::Upload);
        let gen = u.start();
        assert_eq!(gen, u.generation(), "the latest content goes up");
        u.finished(Outcome::Committed, secs(t0, 6.1));
        assert_eq!(u.state(), &State::InBox);
    }

    #[test]
    fn a_change_during_the_upload_gets_exactly_one_more_upload() {
        let t0 = Instant::now();
        let mut u = Upload::staged(timing(), 0, true, t0);
        let first = u.start();
        for i in 0..50 {
            u.opened();
            u.changed(secs(t0, 0.01 * f64::from(i)));
            u.closed(secs(t0, 0.01 * f64::from(i)));
            assert_eq!(u.next(secs(t0, 0.5)), Next::Busy, "no second upload while one runs");
        }
        u.finished(Outcome::Committed, secs(t0, 2.0));
        assert_eq!(u.committed(), first);
        assert_eq!(u.next(secs(t0, 2.0)), Next::Upload, "the delay since the last change has passed");
        let second = u.start();
        assert_eq!(second, u.generation());
        u.finished(Outcome::Committed, secs(t0, 2.5));
        assert_eq!(u.state(), &State::InBox);
    }

    #[test]
    fn committed_while_a_writer_is_open_waits_for_the_last_close() {
        let t0 = Instant::now();
        let mut u = Upload::staged(timing(), 1, true, t0);
        u.hurry(t0);
        assert_eq!(u.next(t0), Next::Upload, "a sync sends it although a writer is open");
        u.start();
        u.finished(Outcome::Committed, t0);
        assert_eq!(u.state(), &State::Open);
        u.closed(t0);
        assert_eq!(u.state(), &State::InBox, "closing with nothing new costs no upload");
        let mut u = Upload::staged(timing(), 1, true, t0);
        u.hurry(t0);
        u.start();
        u.finished(Outcome::Committed, t0);
        u.changed(secs(t0, 1.0));
        u.closed(secs(t0, 1.0));
        assert_eq!(u.next(secs(t0, 1.5)), Next::Sleep(secs(t0, 2.0)));
    }

    #[test]
    fn a_sync_made_while_an_older_send_runs_is_sent_after_it_though_a_writer_is_open() {
        let t0 = Instant::now();
        for outcome in [Outcome::Committed, Outcome::Refused("storage quota exceeded".into())] {
            // A duplicate of the handle closes (a flush) right after the file was made: the empty
            // file goes up; the writer goes on writing, then closes its own (a second flush).
            let mut u = Upload::staged(timing(), 1, true, t0);
            u.hurry(t0);
            u.start();
            u.changed(t0);
            u.hurry(t0);
            u.finished(outcome.clone(), t0);
            assert_eq!(u.next(t0), Next::Upload, "after {outcome:?}: the second sync waits for this send");
            u.start();
            u.finished(Outcome::Committed, t0);
            assert_eq!(u.state(), &State::Open, "nothing more is due while the writer is open");
        }
    }

    #[test]
    fn transient_failures_back_off_and_refusals_settle() {
        let t0 = Instant::now();
        let mut u = Upload::recovered(timing(), None, true, false, t0);
        let mut now = t0;
        for wait in [0.5, 1.0, 2.0, 4.0, 4.0] {
            assert_eq!(u.next(now), Next::Upload);
            u.start();
            u.finished(Outcome::Transient("503".into()), now);
            assert_eq!(u.next(now), Next::Sleep(secs(now, wait)));
            now = secs(now, wait);
        }
        u.start();
        u.finished(Outcome::Refused("quota".into()), now);
        assert_eq!((u.state(), u.next(now)), (&State::Failed("quota".into()), Next::Idle));
        assert!(u.settled());
        u.hurry(now);
        assert_eq!(u.next(now), Next::Upload, "a sync tries a failed upload once more");
    }

    #[test]
    fn a_refusal_of_content_changed_meanwhile_sends_the_new_content() {
        let t0 = Instant::now();
        let mut u = Upload::staged(timing(), 0, true, t0);
        u.start();
        u.changed(t0);
        u.finished(Outcome::Refused("digest mismatch".into()), secs(t0, 2.0));
        assert_eq!(u.next(secs(t0, 2.0)), Next::Upload);
    }

    #[test]
    fn removal_before_the_upload_costs_nothing_and_during_it_wins() {
        let t0 = Instant::now();
        let mut u = Upload::staged(timing(), 1, true, t0);
        u.changed(t0);
        u.remove();
        assert_eq!(u.next(t0), Next::Finished);
        assert_eq!(u.state(), &State::Removed);
        let mut u = Upload::staged(timing(), 0, true, t0);
        u.start();
        u.remove();
        assert_eq!(u.next(t0), Next::Busy);
        u.finished(Outcome::Committed, t0);
        assert_eq!(u.state(), &State::Removed);
    }

    #[test]
    fn a_conflict_uploads_the_copy_at_once() {
        let t0 = Instant::now();
        let mut u = Upload::staged(timing(), 0, true, t0);
        u.start();
        u.finished(Outcome::Conflict, t0);
        assert!(u.is_conflicted_copy());
        assert_eq!(u.next(t0), Next::Upload);
        u.start();
        u.finished(Outcome::Committed, t0);
        assert_eq!(u.state(), &State::InBox);
    }

    #[test]
    fn recovery_enters_the_machine_in_the_state_the_record_says() {
        let t0 = Instant::now();
        // Waiting, uploading or committing when the daemon died: due at once (a resumed
        // session or Box's copy decides what is still to send).
        let mut u = Upload::recovered(timing(), None, true, false, t0);
        assert_eq!(u.next(t0), Next::Upload);
        u.start();
        u.finished(Outcome::Committed, t0);
        assert_eq!(u.state(), &State::InBox);
        // Held after a system crash: nothing until the user releases it.
        let mut u = Upload::recovered(timing(), Some("maybe torn".into()), true, false, t0);
        assert_eq!(u.next(secs(t0, 3600.0)), Next::Idle);
        u.hurry(t0);
        u.changed(t0);
        assert_eq!(u.next(t0), Next::Idle, "neither a sync nor a change releases it");
        u.release(t0);
        assert_eq!(u.next(t0), Next::Upload);
        // Held and discarded.
        let mut u = Upload::recovered(timing(), Some("maybe torn".into()), true, false, t0);
        u.remove();
        assert_eq!(u.next(t0), Next::Finished);
    }

    #[test]
    fn a_copy_of_box_content_goes_up_only_once_changed() {
        let t0 = Instant::now();
        let mut u = Upload::staged(timing(), 1, false, t0);
        u.closed(t0);
        assert_eq!(u.next(t0), Next::Finished, "opened for writing, closed unchanged: no upload");
        let mut u = Upload::staged(timing(), 0, false, t0);
        u.changed(t0);
        assert_eq!(u.next(t0), Next::Sleep(t0 + DELAY), "a truncate or utimens without a handle");
    }

    #[test]
    fn a_change_reopens_a_failed_upload() {
        let t0 = Instant::now();
        let mut u = Upload::staged(timing(), 0, true, t0);
        u.start();
        u.finished(Outcome::Refused("quota".into()), t0);
        u.changed(secs(t0, 1.0));
        assert_eq!(u.next(secs(t0, 1.5)), Next::Sleep(secs(t0, 2.0)));
    }

    #[test]
    fn attributes_alone_are_stored_once_after_the_delay_without_an_upload() {
        let t0 = Instant::now();
        let mut u = Upload::staged(timing(), 0, false, t0);
        assert_eq!(u.next(t0), Next::Finished, "nothing to send yet");
        u.attrs_changed(t0);
        u.attrs_changed(secs(t0, 0.5));
        assert_eq!(u.next(secs(t0, 1.0)), Next::Sleep(secs(t0, 1.5)), "the delay runs from the last change");
        assert_eq!(u.next(secs(t0, 1.5)), Next::StoreAttrs, "no content to upload");
        let gen = u.start_attrs();
        assert_eq!((u.state(), u.next(secs(t0, 1.5))), (&State::StoringAttrs { gen }, Next::Busy));
        assert!(u.in_flight());
        u.finished(Outcome::Committed, secs(t0, 1.6));
        assert_eq!((u.state(), u.attrs_stored(), u.committed()), (&State::InBox, gen, 0));
    }

    #[test]
    fn content_and_attributes_changed_together_cost_one_upload_then_one_metadata_call() {
        let t0 = Instant::now();
        let mut u = Upload::staged(timing(), 1, true, t0);
        u.changed(t0);
        u.attrs_changed(t0);
        u.closed(t0);
        assert_eq!(u.next(secs(t0, 1.0)), Next::Upload, "content first: a new file must exist first");
        u.start();
        u.attrs_changed(secs(t0, 1.1)); // a chmod while the bytes go up
        assert_eq!(u.next(secs(t0, 1.1)), Next::Busy);
        let mark = u.mark();
        u.finished(Outcome::Committed, secs(t0, 1.2));
        assert!(!u.reached(mark), "a sync waits for the attributes too");
        assert_eq!(u.next(secs(t0, 1.2)), Next::StoreAttrs, "right after the content, not a delay later");
        let gen = u.start_attrs();
        assert_eq!(gen, u.attrs_generation(), "the latest attributes, once");
        u.finished(Outcome::Committed, secs(t0, 1.3));
        assert_eq!(u.state(), &State::InBox);
        assert!(u.reached(mark));
    }

    #[test]
    fn a_failed_metadata_call_is_retried_without_sending_the_content_again() {
        let t0 = Instant::now();
        let mut u = Upload::staged(timing(), 0, true, t0);
        u.attrs_changed(t0);
        assert_eq!(u.next(secs(t0, 1.0)), Next::Upload);
        u.start();
        u.finished(Outcome::Committed, secs(t0, 1.0));
        u.start_attrs();
        u.finished(Outcome::Transient("503".into()), secs(t0, 1.0));
        assert_eq!(u.next(secs(t0, 1.0)), Next::Sleep(secs(t0, 1.5)));
        assert_eq!(u.next(secs(t0, 1.5)), Next::StoreAttrs, "only the attributes are left");
        u.start_attrs();
        u.finished(Outcome::Refused("403".into()), secs(t0, 1.5));
        assert_eq!((u.state(), u.next(secs(t0, 9.0))), (&State::Failed("403".into()), Next::Idle));
        u.attrs_changed(secs(t0, 10.0));
        assert_eq!(u.next(secs(t0, 11.0)), Next::StoreAttrs, "a new change tries again");
    }

    #[test]
    fn a_conflicted_copy_gets_the_attributes_again() {
        let t0 = Instant::now();
        let mut u = Upload::staged(timing(), 0, true, t0);
        u.attrs_changed(t0);
        u.start();
        u.finished(Outcome::Committed, t0);
        u.start_attrs();
        u.finished(Outcome::Committed, t0);
        u.changed(t0);
        assert_eq!(u.next(secs(t0, 1.0)), Next::Upload);
        u.start();
        u.finished(Outcome::Conflict, secs(t0, 1.0));
        assert_eq!(u.next(secs(t0, 1.0)), Next::Upload, "the copy goes up");
        u.start();
        u.finished(Outcome::Committed, secs(t0, 1.0));
        assert_eq!(u.next(secs(t0, 1.0)), Next::StoreAttrs, "a new file has none of the attributes");
    }

    #[test]
    fn attributes_wait_for_the_last_writer_and_a_removal_wins() {
        let t0 = Instant::now();
        let mut u = Upload::staged(timing(), 1, false, t0);
        u.attrs_changed(t0);
        assert_eq!(u.next(secs(t0, 5.0)), Next::Idle, "a writer is open");
        u.closed(secs(t0, 5.0));
        assert_eq!(u.next(secs(t0, 6.0)), Next::StoreAttrs);
        u.start_attrs();
        u.remove();
        u.finished(Outcome::Committed, secs(t0, 6.0));
        assert_eq!(u.state(), &State::Removed);
    }

    #[test]
    fn recovered_attributes_go_at_once_and_nothing_pending_is_in_box() {
        let t0 = Instant::now();
        let mut u = Upload::recovered(timing(), None, false, true, t0);
        assert_eq!(u.next(t0), Next::StoreAttrs);
        let mut both = Upload::recovered(timing(), None, true, true, t0);
        assert_eq!(both.next(t0), Next::Upload);
        u.start_attrs();
        u.finished(Outcome::Committed, t0);
        assert_eq!(u.state(), &State::InBox);
        both.start();
        both.finished(Outcome::Committed, t0);
        assert_eq!(both.next(t0), Next::StoreAttrs);
        let held = Upload::recovered(timing(), Some("why".into()), false, true, t0);
        assert_eq!(held.next(t0), Next::Idle);
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let b = Backoff { base: Duration::from_millis(500), max: Duration::from_secs(60) };
        let waits: Vec<u64> = (1..=9).map(|n| b.wait(n).as_millis() as u64).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]);
    }
}
