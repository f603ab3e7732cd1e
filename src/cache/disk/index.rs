//! The disk tier's index: the key, source, size and last use of every entry, in memory, in
//! least-recently-used order, so that eviction and expiry take the oldest entries without
//! walking the tier (O(evicted)), and usage is known exactly at all times.
//!
//! About 70 bytes an entry: a 52-byte record (entry key, source slot, size, last use, and the
//! two links of the LRU list) in fixed-size chunks, 4 bytes a bucket in a hash table of slots
//! keyed by the entry key, and one 36-byte record per source, however many variants it has
//! (`benches/disk_index.rs` measures it). Source keys are kept once per source, since a file's
//! path needs both keys.
//!
//! Pure bookkeeping: no I/O. `disk.rs` holds it under a mutex and keeps it in step with the
//! files; it is not persisted, but rebuilt by one walk of the tier at start-up.

use hashbrown::HashTable;

/// "No slot": the end of a list, a free record's source.
const NONE: u32 = u32::MAX;
/// Records live in chunks of this many, so growing never copies the whole table nor leaves
/// half of a doubled allocation unused.
const CHUNK: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Record {
    key: [u8; 32],
    /// Slot in `sources`; `NONE` while the record is free.
    source: u32,
    /// Bytes of the file (saturated at 4 GiB).
    size: u32,
    /// Last use, seconds since the epoch.
    used: u32,
    /// Towards the most recently used end; for a free record, unused.
    prev: u32,
    /// Towards the least recently used end; for a free record, the next free one.
    next: u32,
}

#[derive(Debug, Clone, Copy)]
struct Source {
    key: [u8; 32],
    /// Records under this source; the slot is freed at 0.
    entries: u32,
}

/// An entry taken out of the index (or looked at).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item {
    pub source: [u8; 32],
    pub key: [u8; 32],
    pub size: u64,
    pub used: u32,
}

#[derive(Debug)]
pub struct Index {
    chunks: Vec<Vec<Record>>,
    /// Record slots handed out so far (in use or free).
    slots: u32,
    /// First free record slot, or `NONE`.
    free: u32,
    /// Record slots, found by entry key.
    table: HashTable<u32>,
    sources: Vec<Source>,
    /// Source slots, found by source key.
    source_table: HashTable<u32>,
    free_sources: Vec<u32>,
    /// Most recently used record, or `NONE`.
    head: u32,
    /// Least recently used record, or `NONE`.
    tail: u32,
    bytes: u64,
    len: u64,
}

/// Keys are blake3 hashes: their first bytes are already a good hash.
fn hash(key: &[u8; 32]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&key[..8]);
    u64::from_le_bytes(b)
}

fn record(chunks: &[Vec<Record>], slot: u32) -> &Record {
    let slot = slot as usize;
    &chunks[slot / CHUNK][slot % CHUNK]
}

fn saturate(size: u64) -> u32 {
    u32::try_from(size).unwrap_or(u32::MAX)
}

impl Default for Index {
    fn default() -> Self {
        Index {
            chunks: Vec::new(),
            slots: 0,
            free: NONE,
            table: HashTable::new(),
            sources: Vec::new(),
            source_table: HashTable::new(),
            free_sources: Vec::new(),
            head: NONE,
            tail: NONE,
            bytes: 0,
            len: 0,
        }
    }
}

impl Index {
    /// Entries indexed.
    pub fn count(&self) -> u64 {
        self.len
    }

    /// Bytes of the entries indexed.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Heap bytes the index holds (capacity, not just what is in use).
    pub fn heap_bytes(&self) -> usize {
        self.chunks.capacity() * size_of::<Vec<Record>>()
            + self
                .chunks
                .iter()
                .map(|c| c.capacity() * size_of::<Record>())
                .sum::<usize>()
            + self.table.allocation_size()
            + self.sources.capacity() * size_of::<Source>()
            + self.source_table.allocation_size()
            + self.free_sources.capacity() * size_of::<u32>()
    }

    fn rec(&self, slot: u32) -> &Record {
        record(&self.chunks, slot)
    }

    fn rec_mut(&mut self, slot: u32) -> &mut Record {
        let slot = slot as usize;
        &mut self.chunks[slot / CHUNK][slot % CHUNK]
    }

    fn find(&self, key: &[u8; 32]) -> Option<u32> {
        let chunks = &self.chunks;
        self.table
            .find(hash(key), |&s| record(chunks, s).key == *key)
            .copied()
    }

    /// Store `key` as just used (a write, or a read of an entry not indexed yet): added, or
    /// updated (size, source) and moved to the most recently used end.
    pub fn put(&mut self, source: &[u8; 32], key: &[u8; 32], size: u64, used: u32) {
        let Some(slot) = self.find(key) else {
            self.insert(source, key, size, used, true);
            return;
        };
        let old = *self.rec(slot);
        if self.sources[old.source as usize].key != *source {
            self.release_source(old.source);
            let id = self.source_id(source);
            self.rec_mut(slot).source = id;
        }
        let size = saturate(size);
        self.bytes = self.bytes - u64::from(old.size) + u64::from(size);
        let r = self.rec_mut(slot);
        r.size = size;
        r.used = used;
        self.unlink(slot);
        self.link_front(slot);
    }

    /// Add an entry found on disk at the least recently used end, unless it is indexed
    /// already (written or read since start-up, so newer than anything found).
    pub fn add_found(&mut self, source: &[u8; 32], key: &[u8; 32], size: u64, used: u32) -> bool {
        if self.find(key).is_some() {
            return false;
        }
        self.insert(source, key, size, used, false)
    }

    fn insert(
        &mut self,
        source: &[u8; 32],
        key: &[u8; 32],
        size: u64,
        used: u32,
        front: bool,
    ) -> bool {
        // A tier of four billion entries is not indexed further rather than wrapping.
        if self.free == NONE && self.slots >= NONE - 1 {
            return false;
        }
        let size = saturate(size);
        let source = self.source_id(source);
        let rec = Record {
            key: *key,
            source,
            size,
            used,
            prev: NONE,
            next: NONE,
        };
        let slot = if self.free != NONE {
            let slot = self.free;
            self.free = self.rec(slot).next;
            *self.rec_mut(slot) = rec;
            slot
        } else {
            if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
                self.chunks.push(Vec::with_capacity(CHUNK));
            }
            if let Some(chunk) = self.chunks.last_mut() {
                chunk.push(rec);
            }
            self.slots += 1;
            self.slots - 1
        };
        let chunks = &self.chunks;
        self.table
            .insert_unique(hash(key), slot, |&s| hash(&record(chunks, s).key));
        if front {
            self.link_front(slot);
        } else {
            self.link_back(slot);
        }
        self.bytes += u64::from(size);
        self.len += 1;
        true
    }

    /// Mark `key` used at `now` (moved to the most recently used end); its previous last use,
    /// or `None` when it is not indexed.
    pub fn touch(&mut self, key: &[u8; 32], now: u32) -> Option<u32> {
        let slot = self.find(key)?;
        let before = self.rec(slot).used;
        self.rec_mut(slot).used = now;
        self.unlink(slot);
        self.link_front(slot);
        Some(before)
    }

    pub fn remove(&mut self, key: &[u8; 32]) -> Option<Item> {
        let slot = self.find(key)?;
        Some(self.remove_slot(slot))
    }

    /// The least recently used entry, without taking it out.
    pub fn oldest(&self) -> Option<Item> {
        (self.tail != NONE).then(|| self.item(self.tail))
    }

    /// Take the least recently used entry out.
    pub fn pop_oldest(&mut self) -> Option<Item> {
        (self.tail != NONE).then(|| self.remove_slot(self.tail))
    }

    /// Put every entry in order of last use (once, after the start-up walk added what it
    /// found in directory order); entries used at the same second keep their order.
    pub fn sort_by_use(&mut self) {
        let mut order = Vec::with_capacity(usize::try_from(self.len).unwrap_or(0));
        let mut slot = self.tail;
        while slot != NONE {
            let r = self.rec(slot);
            order.push((r.used, slot));
            slot = r.prev;
        }
        order.sort_by_key(|&(used, _)| used);
        self.head = NONE;
        self.tail = NONE;
        for &(_, slot) in &order {
            self.link_front(slot);
        }
    }

    fn item(&self, slot: u32) -> Item {
        let r = self.rec(slot);
        Item {
            source: self.sources[r.source as usize].key,
            key: r.key,
            size: u64::from(r.size),
            used: r.used,
        }
    }

    fn remove_slot(&mut self, slot: u32) -> Item {
        let item = self.item(slot);
        if let Ok(entry) = self.table.find_entry(hash(&item.key), |&s| s == slot) {
            entry.remove();
        }
        self.unlink(slot);
        let source = self.rec(slot).source;
        self.release_source(source);
        let free = self.free;
        let r = self.rec_mut(slot);
        r.source = NONE;
        r.next = free;
        self.free = slot;
        self.bytes -= item.size;
        self.len -= 1;
        item
    }

    /// The slot of `key` in `sources`, made when new; counts one more entry under it.
    fn source_id(&mut self, key: &[u8; 32]) -> u32 {
        let sources = &self.sources;
        let found = self
            .source_table
            .find(hash(key), |&i| sources[i as usize].key == *key)
            .copied();
        if let Some(id) = found {
            self.sources[id as usize].entries += 1;
            return id;
        }
        let source = Source {
            key: *key,
            entries: 1,
        };
        let id = match self.free_sources.pop() {
            Some(id) => {
                self.sources[id as usize] = source;
                id
            }
            None => {
                self.sources.push(source);
                // Fewer sources than entries, so this fits as the record slots do.
                (self.sources.len() - 1) as u32
            }
        };
        let sources = &self.sources;
        self.source_table
            .insert_unique(hash(key), id, |&i| hash(&sources[i as usize].key));
        id
    }

    /// One entry fewer under source slot `id`; the slot is freed at none.
    fn release_source(&mut self, id: u32) {
        let s = &mut self.sources[id as usize];
        s.entries -= 1;
        if s.entries > 0 {
            return;
        }
        let h = hash(&s.key);
        if let Ok(entry) = self.source_table.find_entry(h, |&i| i == id) {
            entry.remove();
        }
        self.free_sources.push(id);
    }

    fn link_front(&mut self, slot: u32) {
        let head = self.head;
        let r = self.rec_mut(slot);
        r.prev = NONE;
        r.next = head;
        if head == NONE {
            self.tail = slot;
        } else {
            self.rec_mut(head).prev = slot;
        }
        self.head = slot;
    }

    fn link_back(&mut self, slot: u32) {
        let tail = self.tail;
        let r = self.rec_mut(slot);
        r.next = NONE;
        r.prev = tail;
        if tail == NONE {
            self.head = slot;
        } else {
            self.rec_mut(tail).next = slot;
        }
        self.tail = slot;
    }

    fn unlink(&mut self, slot: u32) {
        let Record { prev, next, .. } = *self.rec(slot);
        if prev == NONE {
            self.head = next;
        } else {
            self.rec_mut(prev).next = next;
        }
        if next == NONE {
            self.tail = prev;
        } else {
            self.rec_mut(next).prev = prev;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(n: u32) -> [u8; 32] {
        // Spread over the hash (the first eight bytes) as blake3 keys are.
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(
            &u64::from(n)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .to_le_bytes(),
        );
        key[8..12].copy_from_slice(&n.to_le_bytes());
        key
    }

    fn order(ix: &mut Index) -> Vec<[u8; 32]> {
        let mut out = Vec::new();
        while let Some(item) = ix.pop_oldest() {
            out.push(item.key);
        }
        out
    }

    #[test]
    fn index_pops_least_recently_used_first_and_a_touch_refreshes() {
        let mut ix = Index::default();
        for n in 0..5 {
            ix.put(&k(100), &k(n), 10, 1000 + n);
        }
        assert_eq!(ix.touch(&k(1), 2000), Some(1001));
        assert_eq!(ix.touch(&k(9), 2000), None);
        ix.put(&k(100), &k(0), 30, 2001);
        assert_eq!((ix.count(), ix.bytes()), (5, 70));
        assert_eq!(order(&mut ix), vec![k(2), k(3), k(4), k(1), k(0)]);
        assert_eq!((ix.count(), ix.bytes()), (0, 0));
    }

    #[test]
    fn index_found_entries_go_behind_and_are_sorted_by_use() {
        let mut ix = Index::default();
        ix.put(&k(100), &k(0), 10, 5000);
        assert!(ix.add_found(&k(100), &k(1), 10, 300));
        assert!(ix.add_found(&k(101), &k(2), 10, 100));
        assert!(ix.add_found(&k(101), &k(3), 10, 200));
        assert!(!ix.add_found(&k(100), &k(0), 10, 1), "indexed since: newer");
        ix.sort_by_use();
        assert_eq!(order(&mut ix), vec![k(2), k(3), k(1), k(0)]);
    }

    #[test]
    fn index_removal_frees_slots_and_sources_for_reuse() {
        let mut ix = Index::default();
        for n in 0..1000 {
            ix.put(&k(10_000 + n % 7), &k(n), 1, n);
        }
        for n in (0..1000).step_by(2) {
            let item = ix.remove(&k(n)).expect("indexed");
            assert_eq!((item.source, item.size), (k(10_000 + n % 7), 1));
        }
        assert_eq!(ix.remove(&k(0)), None);
        for n in 2000..2500 {
            ix.put(&k(10_000), &k(n), 1, n);
        }
        assert_eq!(ix.slots, 1000, "freed slots reused");
        assert_eq!(ix.count(), 1000);
        let oldest = ix.oldest().expect("entries");
        assert_eq!((oldest.key, oldest.source), (k(1), k(10_001)));
        // Every variant of a source gone: its slot is free, and found no more.
        for n in (1..1000).step_by(2) {
            ix.remove(&k(n));
        }
        assert_eq!(ix.source_table.len(), 1);
        assert_eq!(ix.free_sources.len(), 6);
    }

    #[test]
    fn index_a_key_moving_to_another_source_is_counted_under_it() {
        let mut ix = Index::default();
        ix.put(&k(100), &k(1), 10, 1);
        ix.put(&k(200), &k(1), 20, 2);
        assert_eq!((ix.count(), ix.bytes()), (1, 20));
        assert_eq!(ix.oldest().map(|i| i.source), Some(k(200)));
        assert_eq!(ix.source_table.len(), 1);
    }

    #[test]
    fn index_costs_a_few_tens_of_bytes_an_entry() {
        let mut ix = Index::default();
        let n = 100_000;
        // Five variants a source, as a rendition tier with originals typically holds.
        for i in 0..n {
            ix.put(&k(1_000_000 + i / 5), &k(i), 33_000, i);
        }
        let per_entry = ix.heap_bytes() as f64 / f64::from(n);
        assert!(per_entry < 80.0, "{per_entry:.1} bytes an entry");
    }
}
