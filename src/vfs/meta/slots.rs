//! The inode table's storage ([`Slots`]): values under 64-bit ids made of a slot and a
//! generation (`generation << 32 | slot`), in chunks of [`CHUNK`] slots whose memory is given
//! back once every slot of one is free.
//!
//! Invariants: an id is never issued twice (a freed slot is reused with a higher generation,
//! also after its chunk was released and allocated again); slot 0 is never used, so id 0
//! means none; a released chunk holds no value. A freed slot is reused lowest first, so that
//! after a mass removal new values fill the first chunks and the others stay empty. Chunks
//! are released only by [`Slots::release_empty_chunks`], never on the removal that empties
//! one: a create and delete loop at a chunk's edge must not allocate and free a chunk each
//! time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Slots per chunk: a chunk of the inode table's entries is a few hundred KiB.
pub const CHUNK: usize = 2048;

const SLOT_BITS: u32 = 32;

fn id_of(slot: u32, generation: u32) -> u64 {
    (u64::from(generation) << SLOT_BITS) | u64::from(slot)
}

fn split(id: u64) -> (usize, u32) {
    ((id & 0xffff_ffff) as usize, (id >> SLOT_BITS) as u32)
}

/// The slot of `id` (as [`Slots::at`] takes it).
pub fn slot_of(id: u64) -> u32 {
    split(id).0 as u32
}

struct Entry<T> {
    generation: u32,
    value: Option<T>,
}

struct Chunk<T> {
    entries: Box<[Entry<T>]>,
    live: usize,
}

impl<T> Chunk<T> {
    fn new(generation: u32) -> Chunk<T> {
        Chunk { entries: (0..CHUNK).map(|_| Entry { generation, value: None }).collect(), live: 0 }
    }
}

/// Values under generation-tagged ids. See the module doc.
pub struct Slots<T> {
    chunks: Vec<Option<Chunk<T>>>,
    /// Per chunk, a generation above every one issued in it (what a released chunk's slots
    /// start from when it is allocated again).
    floors: Vec<u32>,
    /// Slots ever handed out (slot 0 included); the next new slot.
    high: usize,
    /// Freed slots below `high`, lowest first.
    free: BinaryHeap<Reverse<u32>>,
    live: usize,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots { chunks: Vec::new(), floors: Vec::new(), high: 1, free: BinaryHeap::new(), live: 0 }
    }
}

impl<T> Slots<T> {
    fn entry(&self, slot: usize) -> Option<&Entry<T>> {
        self.chunks.get(slot / CHUNK)?.as_ref().map(|c| &c.entries[slot % CHUNK])
    }

    fn entry_mut(&mut self, slot: usize) -> Option<&mut Entry<T>> {
        self.chunks.get_mut(slot / CHUNK)?.as_mut().map(|c| &mut c.entries[slot % CHUNK])
    }

    pub fn get(&self, id: u64) -> Option<&T> {
        let (slot, generation) = split(id);
        self.entry(slot).filter(|e| e.generation == generation)?.value.as_ref()
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut T> {
        let (slot, generation) = split(id);
        self.entry_mut(slot).filter(|e| e.generation == generation)?.value.as_mut()
    }

    /// The value in `slot` (whatever its generation) and its id.
    pub fn at(&self, slot: u32) -> Option<(u64, &T)> {
        let e = self.entry(slot as usize)?;
        e.value.as_ref().map(|v| (id_of(slot, e.generation), v))
    }

    /// Stores `value` in the lowest free slot (with a new generation) or a new one; returns
    /// its id.
    pub fn insert(&mut self, value: T) -> u64 {
        let (slot, reused) = match self.free.pop() {
            Some(Reverse(slot)) => (slot as usize, true),
            None => {
                self.high += 1;
                (self.high - 1, false)
            }
        };
        u32::try_from(slot).expect("fewer than 2^32 items");
        let c = slot / CHUNK;
        if self.chunks.len() <= c {
            self.chunks.resize_with(c + 1, || None);
            self.floors.resize(c + 1, 0);
        }
        let chunk = self.chunks[c].get_or_insert_with(|| Chunk::new(self.floors[c]));
        chunk.live += 1;
        let e = &mut chunk.entries[slot % CHUNK];
        if reused {
            e.generation += 1;
        }
        e.value = Some(value);
        self.floors[c] = self.floors[c].max(e.generation + 1);
        self.live += 1;
        id_of(slot as u32, e.generation)
    }

    pub fn remove(&mut self, id: u64) -> Option<T> {
        let (slot, generation) = split(id);
        let chunk = self.chunks.get_mut(slot / CHUNK)?.as_mut()?;
        let e = &mut chunk.entries[slot % CHUNK];
        if e.generation != generation {
            return None;
        }
        let value = e.value.take()?;
        chunk.live -= 1;
        self.live -= 1;
        self.free.push(Reverse(slot as u32));
        Some(value)
    }

    /// Bytes a slot takes in its chunk.
    pub fn slot_bytes() -> usize {
        std::mem::size_of::<Entry<T>>()
    }

    /// Values stored.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Gives back the memory of every chunk with no value in it; returns how many were.
    pub fn release_empty_chunks(&mut self) -> usize {
        let mut released = 0;
        for chunk in &mut self.chunks {
            if chunk.as_ref().is_some_and(|c| c.live == 0) {
                *chunk = None;
                released += 1;
            }
        }
        let in_use = self.chunks.iter().rposition(Option::is_some).map_or(0, |c| c + 1);
        self.chunks.truncate(in_use);
        self.chunks.shrink_to_fit();
        self.free.shrink_to_fit();
        released
    }

    /// Chunks allocated now.
    #[cfg(test)]
    fn chunks(&self) -> usize {
        self.chunks.iter().flatten().count()
    }

    pub fn iter(&self) -> impl Iterator<Item = (u64, &T)> {
        self.chunks.iter().enumerate().filter_map(|(c, chunk)| Some((c, chunk.as_ref()?))).flat_map(|(c, chunk)| {
            chunk
                .entries
                .iter()
                .enumerate()
                .filter_map(move |(i, e)| e.value.as_ref().map(|v| (id_of((c * CHUNK + i) as u32, e.generation), v)))
        })
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (u64, &mut T)> {
        self.chunks.iter_mut().enumerate().filter_map(|(c, chunk)| Some((c, chunk.as_mut()?))).flat_map(|(c, chunk)| {
            chunk.entries.iter_mut().enumerate().filter_map(move |(i, e)| {
                let generation = e.generation;
                e.value.as_mut().map(|v| (id_of((c * CHUNK + i) as u32, generation), v))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_never_reused_also_across_a_released_chunk() {
        let mut s = Slots::default();
        let mut seen = HashSet::new();
        let first: Vec<u64> = (0..3 * CHUNK).map(|i| s.insert(i)).collect();
        assert!(first.iter().all(|id| seen.insert(*id) && *id != 0));
        // Slot 0 is never used: the second chunk holds the values CHUNK - 1 .. 2 * CHUNK - 1.
        // Empty it (and some of the third), release it, fill again.
        let removed = &first[CHUNK - 1..2 * CHUNK + 10];
        for id in removed {
            assert!(s.remove(*id).is_some());
            assert!(s.get(*id).is_none());
        }
        assert!(s.remove(removed[0]).is_none(), "removed once");
        assert_eq!(s.release_empty_chunks(), 1);
        // The first, third and fourth (slot 3 * CHUNK) stay.
        assert_eq!(s.chunks(), 3);
        for id in removed {
            assert!(s.get(*id).is_none(), "a released slot answers nothing");
        }
        for i in 0..2 * CHUNK {
            let id = s.insert(i);
            assert!(seen.insert(id), "id {id:#x} issued twice");
        }
        assert_eq!(s.len(), 3 * CHUNK - removed.len() + 2 * CHUNK);
        assert_eq!(s.get(first[0]), Some(&0));
        assert_eq!(s.get(first[3 * CHUNK - 1]), Some(&(3 * CHUNK - 1)));
    }

    #[test]
    fn freed_slots_are_reused_lowest_first_so_upper_chunks_empty() {
        let mut s = Slots::default();
        let ids: Vec<u64> = (0..4 * CHUNK).map(|i| s.insert(i)).collect();
        // Remove everything in an order that mixes chunks, then put half back.
        for id in ids.iter().rev().step_by(2).chain(ids.iter().step_by(2)) {
            s.remove(*id);
        }
        assert!(s.is_empty());
        for i in 0..CHUNK {
            s.insert(i);
        }
        s.release_empty_chunks();
        // Slot 0 is never used, so CHUNK values take two chunks.
        assert_eq!(s.chunks(), 2);
        assert_eq!(s.iter().count(), CHUNK);
        assert!(s.iter().all(|(id, v)| s.at(slot_of(id)) == Some((id, v))));
    }

    #[test]
    fn a_remove_that_empties_a_chunk_keeps_it_until_released() {
        let mut s = Slots::default();
        let ids: Vec<u64> = (0..CHUNK + 1).map(|i| s.insert(i)).collect();
        let last = *ids.last().unwrap();
        assert_eq!(s.chunks(), 2);
        s.remove(last);
        assert_eq!(s.chunks(), 2);
        let again = s.insert(7);
        assert_ne!(again, last);
        assert_eq!(slot_of(again), slot_of(last));
        s.iter_mut().for_each(|(_, v)| *v += 1);
        assert_eq!(s.get(again), Some(&8));
    }
}
