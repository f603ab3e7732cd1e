//! Entropy decoding for the DC-only decoder: a bit reader over one entropy-coded segment,
//! canonical Huffman tables with a 9-bit lookahead, and the AC *skip* table that lets a
//! baseline scan step over a block's AC coefficients without decoding them.
//!
//! The skip table is indexed by the next [`SKIP_BITS`] bits of the stream. Each entry says how
//! many of those bits the whole symbols starting there take (Huffman code *and* magnitude bits,
//! several symbols when they are short), how many coefficient positions they advance, and
//! whether the last one is an end-of-block. Nothing is sign-extended or stored: a photo's luma
//! block costs one or two lookups instead of one decode per coefficient.

/// Bits of lookahead in [`Huffman`]'s fast table (libjpeg uses 8; 9 covers nearly every
/// code of the standard tables).
const LOOKAHEAD: u32 = 9;
const LOOKAHEAD_MASK: usize = (1 << LOOKAHEAD) - 1;

/// Bits of the skip table's index: 4096 entries of 2 bytes, 8 KB per AC table, in L1.
pub(super) const SKIP_BITS: u32 = 12;
const SKIP_MASK: usize = (1 << SKIP_BITS) - 1;

/// An AC table's skip table (see the module doc and [`Huffman::skip_table`]).
pub(super) type SkipTable = Box<[u16; 1 << SKIP_BITS]>;

/// Bits of the index of [`LowTable`].
const LOW_BITS: u32 = 10;
const LOW_MASK: usize = (1 << LOW_BITS) - 1;

/// An AC table's whole-symbol table for the first few coefficients of a block (see
/// [`Huffman::low_table`]): 4 KB, in L1 beside the skip table.
pub(super) type LowTable = Box<[i32; 1 << LOW_BITS]>;
const LOW_EOB: i32 = 1 << 9;
const LOW_ZRL: i32 = 1 << 10;
const LOW_SYM: i32 = 1 << 11;

/// A DHT table as the file defines it: checked when it is read, turned into a [`Huffman`]
/// (with its lookup tables) only when a scan uses it, so a file of many table definitions
/// costs what parsing them costs.
#[derive(Debug, Clone)]
pub(super) struct TableSpec {
    counts: [u8; 16],
    values: Vec<u8>,
}

impl TableSpec {
    /// `None` when the counts describe more codes than fit (what libjpeg calls a bad
    /// Huffman table) or there are fewer symbols than codes.
    pub(super) fn new(counts: [u8; 16], values: Vec<u8>) -> Option<Self> {
        let mut code = 0u32;
        for (len, &n) in (1..=16u32).zip(&counts) {
            code += u32::from(n);
            if code > 1 << len {
                return None;
            }
            code <<= 1;
        }
        let total: usize = counts.iter().map(|&n| usize::from(n)).sum();
        (values.len() >= total).then_some(TableSpec { counts, values })
    }

    pub(super) fn build(&self) -> Option<Huffman> {
        Huffman::new(&self.counts, self.values.clone())
    }
}

/// A canonical Huffman table (JPEG Annex C), with a lookahead table for short codes.
#[derive(Debug, Clone)]
pub(super) struct Huffman {
    /// Largest code of each length 1..=16, or -1.
    maxcode: [i32; 17],
    /// Index into `values` of the first code of each length, minus that code.
    offset: [i32; 17],
    values: Vec<u8>,
    /// The next `LOOKAHEAD` bits → `length << 8 | symbol`; 0 when the code is longer.
    fast: Box<[u16; 1 << LOOKAHEAD]>,
    /// As an AC table, the next `LOOKAHEAD` bits → a whole coefficient when its code and
    /// magnitude bits fit: `value << 16 | run << 5 | bits`; 0 otherwise (and for EOB/ZRL).
    ac_fast: Box<[i32; 1 << LOOKAHEAD]>,
}

impl Huffman {
    /// The table from a DHT segment's 16 counts and its symbols, or `None` when the counts
    /// describe more codes than fit (what libjpeg calls a bad Huffman table).
    fn new(counts: &[u8; 16], values: Vec<u8>) -> Option<Self> {
        let mut maxcode = [-1i32; 17];
        let mut offset = [0i32; 17];
        let mut fast = Box::new([0u16; 1 << LOOKAHEAD]);
        let (mut code, mut k) = (0i32, 0usize);
        for len in 1..=16u32 {
            let n = i32::from(counts[len as usize - 1]);
            if n > 0 {
                offset[len as usize] = k as i32 - code;
                for c in code..code + n {
                    if len <= LOOKAHEAD {
                        let sym = u16::from(*values.get(k)?);
                        let shift = LOOKAHEAD - len;
                        let first = (c as usize) << shift;
                        fast.get_mut(first..first + (1 << shift))?
                            .fill((len as u16) << 8 | sym);
                    }
                    k += 1;
                }
                code += n;
                maxcode[len as usize] = code - 1;
                // A table with more codes than fit in `len` bits is corrupt.
                if code > 1 << len {
                    return None;
                }
            }
            code <<= 1;
        }
        if values.len() < k {
            return None;
        }
        let mut ac_fast = Box::new([0i32; 1 << LOOKAHEAD]);
        for (w, slot) in ac_fast.iter_mut().enumerate() {
            let e = fast[w];
            let (len, sym) = (u32::from(e >> 8), e as u8);
            let (run, size) = (i32::from(sym >> 4), u32::from(sym & 15));
            if e != 0 && size > 0 && len + size <= LOOKAHEAD {
                let v = (w as u32 >> (LOOKAHEAD - len - size)) & ((1 << size) - 1);
                *slot = extend(v, size) << 16 | run << 5 | (len + size) as i32;
            }
        }
        Some(Huffman {
            maxcode,
            offset,
            values,
            fast,
            ac_fast,
        })
    }

    /// The code at the top of a 16-bit window of which only the first `avail` bits are real:
    /// `(length, symbol)`, or `None` when no code of at most `avail` bits matches.
    fn lookup(&self, window: u32, avail: u32) -> Option<(u32, u8)> {
        let e = self.fast[(window >> (16 - LOOKAHEAD)) as usize & LOOKAHEAD_MASK];
        if e != 0 {
            let len = u32::from(e >> 8);
            return (len <= avail).then_some((len, e as u8));
        }
        for len in LOOKAHEAD + 1..=avail.min(16) {
            let code = (window >> (16 - len)) as i32;
            if code <= self.maxcode[len as usize] {
                let sym = self
                    .values
                    .get((code + self.offset[len as usize]) as usize)?;
                return Some((len, *sym));
            }
        }
        None
    }

    /// [`Bits::low_block`]'s table. The next [`LOW_BITS`] bits → the first symbol when its
    /// code and magnitude bits fit: `value << 16 | run << 5 | bits`, or an end-of-block
    /// (`LOW_EOB | bits`) or a run of sixteen zeros (`LOW_ZRL | bits`); when only the code
    /// fits, `symbol << 16 | LOW_SYM | code bits` (the magnitude bits follow, read from the
    /// accumulator: the low-frequency coefficients are the large ones); 0 when the code is
    /// longer (then the one-symbol path).
    pub(super) fn low_table(&self) -> LowTable {
        let mut table = Box::new([0i32; 1 << LOW_BITS]);
        for (w, slot) in table.iter_mut().enumerate() {
            let window = ((w as u32) << (16 - LOW_BITS)) & 0xFFFF;
            let Some((len, sym)) = self.lookup(window, LOW_BITS) else {
                continue;
            };
            let (run, size) = (u32::from(sym >> 4), u32::from(sym & 15));
            *slot = match (run, size) {
                (15, 0) => LOW_ZRL | len as i32,
                (_, 0) => LOW_EOB | len as i32,
                _ if len + size <= LOW_BITS => {
                    let v = (w as u32 >> (LOW_BITS - len - size)) & ((1 << size) - 1);
                    extend(v, size) << 16 | (run as i32) << 5 | (len + size) as i32
                }
                _ => i32::from(sym) << 16 | LOW_SYM | len as i32,
            };
        }
        table
    }

    /// The skip table for this table used as an AC table (see the module doc): from the
    /// codes that start within the window, every whole symbol; the last one's magnitude bits
    /// may run past the window. Entry layout: bits 0-4 bits taken (0: no whole symbol in the window, decode one by one), bits 5-11
    /// positions advanced, bit 12 the last symbol is an end-of-block.
    pub(super) fn skip_table(&self) -> SkipTable {
        let mut table = Box::new([0u16; 1 << SKIP_BITS]);
        for (w, slot) in table.iter_mut().enumerate() {
            let (mut used, mut advance, mut eob) = (0u32, 0u32, false);
            while used < SKIP_BITS {
                let left = SKIP_BITS - used;
                let window = ((w as u32) << (16 - SKIP_BITS + used)) & 0xFFFF;
                let Some((len, sym)) = self.lookup(window, left) else {
                    break;
                };
                let (run, size) = (u32::from(sym >> 4), u32::from(sym & 15));
                // libjpeg ends the block on any zero-size symbol but ZRL (run 15).
                if size == 0 && run != 15 {
                    used += len;
                    eob = true;
                    break;
                }
                let step = if size == 0 { 16 } else { run + 1 };
                if advance + step > 64 {
                    break;
                }
                // The magnitude bits may run past the window: then this symbol is the last
                // (at most 12 + 15 = 27 bits, which the decoder has after a refill).
                used += len + size;
                advance += step;
            }
            if used > 0 {
                *slot = (used | advance << 5 | u32::from(eob) << 12) as u16;
            }
        }
        table
    }
}

/// Reads the bits of one entropy-coded segment (up to the next marker that is not RSTn).
///
/// The accumulator holds `n` valid bits at its top. Refills take eight bytes at a time when
/// none of them is 0xFF (no stuffing, no marker), one byte at a time otherwise. Bits below the
/// `n` valid ones may hold the start of the next bytes, never anything else, so a lookup that
/// peeks past `n` only ever has to check that what it takes is within `n`.
pub(super) struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u64,
    pub(super) n: u32,
    /// A marker was reached: no more data bytes in this segment.
    at_marker: bool,
}

impl<'a> Bits<'a> {
    pub(super) fn new(data: &'a [u8], pos: usize) -> Self {
        Bits {
            data,
            pos,
            acc: 0,
            n: 0,
            at_marker: false,
        }
    }

    /// Top up the accumulator to more than 56 bits, or as far as the segment goes.
    #[inline]
    pub(super) fn refill(&mut self) {
        if self.n > 56 {
            return;
        }
        if let Some(chunk) = self.data.get(self.pos..).and_then(<[u8]>::first_chunk::<8>) {
            let word = u64::from_be_bytes(*chunk);
            // No byte is 0xFF: no byte of `!word` is zero.
            let v = !word;
            if v.wrapping_sub(0x0101_0101_0101_0101) & !v & 0x8080_8080_8080_8080 == 0 {
                self.acc |= word >> self.n;
                let bytes = (64 - self.n) / 8;
                self.pos += bytes as usize;
                self.n += bytes * 8;
                return;
            }
        }
        self.refill_bytes();
    }

    #[cold]
    fn refill_bytes(&mut self) {
        while self.n <= 56 && !self.at_marker {
            let Some(&b) = self.data.get(self.pos) else {
                self.at_marker = true;
                break;
            };
            if b == 0xFF {
                match self.data.get(self.pos + 1) {
                    Some(0x00) => self.pos += 2,
                    _ => {
                        self.at_marker = true;
                        break;
                    }
                }
            } else {
                self.pos += 1;
            }
            self.acc |= u64::from(b) << (56 - self.n);
            self.n += 8;
        }
    }

    /// The next `k` (1..=16) bits without taking them; bits past `n` are not data.
    #[inline]
    pub(super) fn peek(&self, k: u32) -> u32 {
        (self.acc >> (64 - k)) as u32
    }

    /// Drop `k` bits the caller has checked are valid (`k <= n`).
    #[inline]
    pub(super) fn consume(&mut self, k: u32) {
        self.acc <<= k;
        self.n -= k;
    }

    /// The next `k` (≤ 16) bits, or `None` when the segment ran out (truncated scan).
    #[inline]
    pub(super) fn get(&mut self, k: u32) -> Option<u32> {
        if k == 0 {
            return Some(0);
        }
        if self.n < k {
            self.refill();
            if self.n < k {
                return None;
            }
        }
        let v = self.peek(k);
        self.consume(k);
        Some(v)
    }

    /// One Huffman symbol, or `None` on a bad code or the end of the segment.
    #[inline]
    pub(super) fn decode(&mut self, t: &Huffman) -> Option<u8> {
        if self.n < 16 {
            self.refill();
        }
        let e = t.fast[self.peek(LOOKAHEAD) as usize & LOOKAHEAD_MASK];
        let len = u32::from(e >> 8);
        if e != 0 && len <= self.n {
            self.consume(len);
            return Some(e as u8);
        }
        self.decode_slow(t)
    }

    #[cold]
    fn decode_slow(&mut self, t: &Huffman) -> Option<u8> {
        let (len, sym) = t.lookup(self.peek(16), self.n)?;
        self.consume(len);
        Some(sym)
    }

    /// Step over one block's AC coefficients (positions 1..=63) with `skip`, the table's
    /// [`Huffman::skip_table`].
    #[inline]
    pub(super) fn skip_ac(&mut self, t: &Huffman, skip: &[u16; 1 << SKIP_BITS]) -> Option<()> {
        // The accumulator lives in registers for the loop (through `&mut self` it would be
        // stored and reloaded at every symbol); `self` is synced around refills and the
        // one-symbol path.
        let (acc, n) = self.skip_from(t, skip, (self.acc, self.n), 1)?;
        (self.acc, self.n) = (acc, n);
        Some(())
    }

    /// The rest of a block from zigzag position `k` skipped, with the accumulator and its bit
    /// count `(acc, n)` passed in and returned in registers: [`Bits::skip_ac`] from 1, and
    /// [`Bits::low_block`] after its low coefficients.
    #[inline(always)]
    fn skip_from(
        &mut self,
        t: &Huffman,
        skip: &[u16; 1 << SKIP_BITS],
        (mut acc, mut n): (u64, u32),
        mut k: u32,
    ) -> Option<(u64, u32)> {
        while k < 64 {
            if n < 32 {
                (self.acc, self.n) = (acc, n);
                self.refill();
                (acc, n) = (self.acc, self.n);
            }
            let e = u32::from(skip[(acc >> (64 - SKIP_BITS)) as usize & SKIP_MASK]);
            let (used, advance, eob) = (e & 31, (e >> 5) & 127, e >> 12);
            // The entry's symbols all belong to this block when they end by position 64 (and
            // an end-of-block within it comes before position 64).
            if used != 0 && used <= n && k + advance + eob <= 64 {
                acc <<= used;
                n -= used;
                if eob != 0 {
                    break;
                }
                k += advance;
            } else {
                (self.acc, self.n) = (acc, n);
                let sym = self.decode(t)?;
                let (run, size) = (u32::from(sym >> 4), u32::from(sym & 15));
                self.get(size)?;
                (acc, n) = (self.acc, self.n);
                if size == 0 && run != 15 {
                    break;
                }
                k += if size == 0 { 16 } else { run + 1 };
            }
        }
        Some((acc, n))
    }

    /// Decode one block's AC coefficients into `block` (zigzag order, not dequantised),
    /// position 63 taking anything a corrupt run pushes past it, as libjpeg does. Returns the
    /// last position written (0 when every AC coefficient is zero). Accumulator in
    /// registers, as in [`Bits::skip_ac`].
    #[inline]
    pub(super) fn decode_ac(&mut self, t: &Huffman, block: &mut [i16; 64]) -> Option<usize> {
        let (mut acc, mut n) = (self.acc, self.n);
        let (mut k, mut last) = (1u32, 0usize);
        while k < 64 {
            if n < 32 {
                (self.acc, self.n) = (acc, n);
                self.refill();
                (acc, n) = (self.acc, self.n);
            }
            let index = (acc >> (64 - LOOKAHEAD)) as usize & LOOKAHEAD_MASK;
            let f = t.ac_fast[index];
            let used = (f & 31) as u32;
            if f != 0 && used <= n {
                // Code and magnitude in one lookup.
                acc <<= used;
                n -= used;
                k += ((f >> 5) & 15) as u32;
                last = k.min(63) as usize;
                block[last] = (f >> 16) as i16;
                k += 1;
                continue;
            }
            let e = t.fast[index];
            let len = u32::from(e >> 8);
            let sym = if e != 0 && len <= n {
                acc <<= len;
                n -= len;
                e as u8
            } else {
                (self.acc, self.n) = (acc, n);
                let sym = self.decode_slow(t)?;
                (acc, n) = (self.acc, self.n);
                sym
            };
            let (run, size) = (u32::from(sym >> 4), u32::from(sym & 15));
            if size == 0 {
                if run != 15 {
                    break;
                }
                k += 16;
                continue;
            }
            if size > n {
                return None; // the segment ends inside the magnitude bits
            }
            let v = (acc >> (64 - size)) as u32;
            acc <<= size;
            n -= size;
            k += run;
            // Like libjpeg's JCOEF store: a 15-bit magnitude wraps.
            last = k.min(63) as usize;
            block[last] = extend(v, size) as i16;
            k += 1;
        }
        (self.acc, self.n) = (acc, n);
        Some(last)
    }

    /// One block of a full-resolution component at 1/4: its DC difference (returned), its AC
    /// coefficients at zigzag positions `1..N` into `low` (zigzag order, not dequantised;
    /// `low[0]` is left alone), and the rest of the block skipped with the skip table from
    /// wherever the last decoded symbol ended. A run that jumps past `N - 1` leaves its
    /// coefficient unstored. One pass with the accumulator in registers: the decode is a chain
    /// of dependent table lookups, and every store and reload of `self` would lengthen it.
    #[inline(always)]
    pub(super) fn low_block<const N: usize>(
        &mut self,
        dc: &Huffman,
        ac: &Huffman,
        tables: (&[u16; 1 << SKIP_BITS], &[i32; 1 << LOW_BITS]),
        low: &mut [i16; N],
    ) -> Option<i32> {
        let (skip, fast) = tables;
        if self.n < 32 {
            self.refill();
        }
        let (mut acc, mut n) = (self.acc, self.n);
        // The DC difference, as `dc_diff`.
        let e = dc.fast[(acc >> (64 - LOOKAHEAD)) as usize & LOOKAHEAD_MASK];
        let len = u32::from(e >> 8);
        let s = if e != 0 && len <= n {
            acc <<= len;
            n -= len;
            u32::from(e as u8)
        } else {
            (self.acc, self.n) = (acc, n);
            let s = self.decode_slow(dc)?;
            (acc, n) = (self.acc, self.n);
            u32::from(s)
        };
        if s > 11 || s > n {
            return None;
        }
        let diff = if s == 0 {
            0
        } else {
            let v = (acc >> (64 - s)) as u32;
            acc <<= s;
            n -= s;
            extend(v, s)
        };
        let mut k = 1u32;
        'block: {
            // The low coefficients, one symbol per lookup.
            while (k as usize) < N {
                if n < 32 {
                    (self.acc, self.n) = (acc, n);
                    self.refill();
                    (acc, n) = (self.acc, self.n);
                }
                let f = fast[(acc >> (64 - LOW_BITS)) as usize & LOW_MASK];
                let used = (f & 31) as u32;
                if f & LOW_SYM != 0 {
                    // The code, then its magnitude bits straight from the accumulator.
                    let sym = (f >> 16) as u32;
                    let (run, size) = (sym >> 4, sym & 15);
                    if used + size <= n {
                        acc <<= used;
                        let v = (acc >> (64 - size)) as u32;
                        acc <<= size;
                        n -= used + size;
                        k += run;
                        if let Some(slot) = low.get_mut(k as usize) {
                            *slot = extend(v, size) as i16;
                        }
                        k += 1;
                        continue;
                    }
                } else if f != 0 && used <= n {
                    acc <<= used;
                    n -= used;
                    if f & LOW_EOB != 0 {
                        break 'block;
                    }
                    if f & LOW_ZRL != 0 {
                        k += 16;
                        continue;
                    }
                    k += ((f >> 5) & 15) as u32;
                    if let Some(slot) = low.get_mut(k as usize) {
                        *slot = (f >> 16) as i16;
                    }
                    k += 1;
                    continue;
                }
                (self.acc, self.n) = (acc, n);
                let sym = self.decode(ac)?;
                let (run, size) = (u32::from(sym >> 4), u32::from(sym & 15));
                let v = self.get(size)?;
                (acc, n) = (self.acc, self.n);
                if size == 0 {
                    if run != 15 {
                        break 'block;
                    }
                    k += 16;
                    continue;
                }
                k += run;
                if let Some(slot) = low.get_mut(k as usize) {
                    *slot = extend(v, size) as i16;
                }
                k += 1;
            }
            // The rest skipped, as `skip_ac` does.
            (acc, n) = self.skip_from(ac, skip, (acc, n), k)?;
        }
        (self.acc, self.n) = (acc, n);
        Some(diff)
    }

    /// A block's DC difference: its magnitude category's Huffman code, then that many bits,
    /// sign-extended. `None` past category 11 (not an 8-bit file) or the segment's end.
    #[inline]
    pub(super) fn dc_diff(&mut self, t: &Huffman) -> Option<i32> {
        if self.n < 32 {
            self.refill();
        }
        let (mut acc, mut n) = (self.acc, self.n);
        let e = t.fast[(acc >> (64 - LOOKAHEAD)) as usize & LOOKAHEAD_MASK];
        let len = u32::from(e >> 8);
        let s = if e != 0 && len <= n {
            acc <<= len;
            n -= len;
            u32::from(e as u8)
        } else {
            let s = self.decode_slow(t)?;
            (acc, n) = (self.acc, self.n);
            u32::from(s)
        };
        if s > 11 || s > n {
            return None;
        }
        let diff = if s == 0 {
            0
        } else {
            let v = (acc >> (64 - s)) as u32;
            acc <<= s;
            n -= s;
            extend(v, s)
        };
        (self.acc, self.n) = (acc, n);
        Some(diff)
    }

    /// Drop the buffered bits and expect restart marker `RST(n)` next.
    pub(super) fn restart(&mut self, n: u8) -> Option<()> {
        if self.data.get(self.pos) == Some(&0xFF)
            && self.data.get(self.pos + 1) == Some(&(0xD0 + n))
        {
            self.pos += 2;
            self.acc = 0;
            self.n = 0;
            self.at_marker = false;
            Some(())
        } else {
            None
        }
    }
}

/// Sign-extend a `s`-bit magnitude category value (JPEG F.2.2.1 EXTEND).
#[inline]
pub(super) fn extend(v: u32, s: u32) -> i32 {
    if s == 0 {
        0
    } else if v < 1 << (s - 1) {
        v as i32 - (1 << s) + 1
    } else {
        v as i32
    }
}
