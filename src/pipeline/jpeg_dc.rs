//! DC-only decoding of JPEGs at 1/8 scale, in safe Rust: what libjpeg-turbo's 1/8 scaled
//! decode gives, without most of its work; and a 1/4-scale decode of baseline files from each
//! block's lowest-frequency coefficients (see "1/4 scale" below).
//!
//! At 1/8 scale each 8x8 block becomes one pixel, and libjpeg's 1x1 IDCT reads only the
//! block's DC coefficient: `(dc * q0 + 4) >> 3` plus 128 (see [`idct`]).
//!
//! - **Progressive** files store every DC coefficient in a few small scans of their own, so a
//!   thumbnail needs only those. libjpeg-turbo still entropy-decodes every AC scan into a
//!   whole-image coefficient buffer (180 ms and ~90 MB for a 20 MP file); this module
//!   Huffman-decodes the DC scans (first and refinement), skips the bytes of every AC scan
//!   with `memchr`, and never allocates more than two bytes per block per component.
//! - **Baseline** (sequential) files interleave DC and AC, so every block's codes must be
//!   walked, but not decoded: after the DC difference, the AC coefficients are *skipped* with
//!   a table that gives the length of several whole symbols (code + magnitude bits) per lookup
//!   ([`entropy`]) — no sign extension, no storage, no IDCT. A component subsampled by two on
//!   both axes (4:2:0 chroma) is where libjpeg runs a 2x2 IDCT instead of 1x1; its blocks
//!   are decoded in full and go through the same 2x2 IDCT, so the result is libjpeg's.
//!
//! Quality gate: it answers only when the result is what libjpeg-turbo's 1/8 decode gives
//! (byte for byte in the tests; the one estimate is progressive 4:2:0 chroma, whose 2x2 IDCT
//! needs AC data this path skips and which is bilinear-upsampled from the DC instead, a level
//! or two off on soft edges). Every component must be complete (all DC bits of a progressive
//! file, including refinement scans after the AC data; every block of a baseline one), the file
//! must end in EOI, and restart markers must be where they belong. Anything else —
//! arithmetic, 12-bit, lossless, hierarchical, CMYK/YCCK, a 4x4 chroma IDCT, a bad code, a
//! truncated or odd file — returns `None` and the caller uses the full libjpeg-turbo path,
//! which then also decides what is corrupt. Work and memory are linear in the block count,
//! which the caller has already held to `limits.max_source_pixels`.
//!
//! # 1/4 scale (baseline only)
//!
//! At 1/4 each 8x8 block of a full-resolution component (4:4:4 luma and chroma, grayscale,
//! the luma of every sampling) becomes 2x2 samples. libjpeg-turbo's `jpeg_idct_2x2` makes
//! them the 4x4 quadrant averages of the block's inverse DCT, which reads the coefficients at
//! rows and columns 0, 1, 3, 5 and 7, deep into the zigzag: a full decode of every block.
//! This path decodes only zigzag 0..=4 (DC, the first horizontal and vertical terms and
//! their product) and skips the rest of the block with the skip table, then evaluates the
//! inverse DCT restricted to those terms at each quadrant's centre ([`idct::idct_low_2x2`],
//! libjpeg 9's true 2-point `jpeg_idct_2x2`: `(F00 ± F01 ± F10 ± F11) / 8`). The finer terms
//! it drops are above the final image's Nyquist limit whenever the 1/4 image is resized on
//! down, which is when the pipeline picks 1/4, so the resizer would remove them anyway (in
//! libjpeg-turbo's average they alias instead). Measured (tests
//! `quarter_renders_as_well_as_libjpeg_quarter`): rendered to 0.94 of the 1/4 size and
//! compared to the same render from the full-resolution decode, this path scores 0.1 to 1.3 dB
//! *above* libjpeg-turbo's 1/4 decode (photo-5120x2880 4:4:4: 48.40 vs 48.23 dB; the 4:2:0
//! fixture photo: 36.46 vs 35.21 dB), and 39-52 dB against libjpeg-turbo's 1/4 output itself.
//! The alternatives it was measured against: quadrant-average weights (0.906 instead of 1
//! for the first terms) and rows and columns 3 too (zigzag up to 24) with point or
//! libjpeg-turbo weights. Quadrant-average weights tie (better on two of the four photos by
//! up to 0.4 dB, worse on the other two by up to 0.4 dB); rows and columns 3 cost decoding to
//! zigzag 24 and gain nothing (libjpeg-turbo's weights: within 0.05 dB of libjpeg-turbo's
//! decode) or lose 2-4.5 dB (point weights: aliasing).
//!
//! A component subsampled by two on both axes (4:2:0 chroma) gets libjpeg's 4x4 IDCT at 1/4
//! (full resolution at that scale, no upsampling): its blocks are decoded whole and go
//! through an exact port of `jpeg_idct_4x4` ([`idct::idct_4x4`]), with the same limits as the
//! 2x2 one. With libjpeg's own 2x2 transform for the other components, the whole 1/4 output is
//! libjpeg-turbo's byte for byte (a test), so the transform is the only estimate. Progressive
//! files (1/4 needs their AC scans), samplings that libjpeg upsamples at 1/4 (4:2:2, 4:4:0,
//! 4:1:1: its fancy upsampling is not reproduced here) and everything the 1/8 path declines
//! return `None`. Memory: one byte per 1/4-scale sample per component plus the RGB output.
//!
//! Speed (`benches/jpeg_dc.rs`, thread CPU, AMD EPYC): photo-5120x2880 (4:4:4, 4.7 MB) 40 ms
//! against libjpeg-turbo's 57 ms at 1/4 (0.70x; the 1/8 DC-only walk of the same file is
//! 28 ms: decoding the low coefficients instead of skipping them costs about 9 ms, the larger
//! output about 3), gray-2560x1600 0.70x. On 4:2:0 files it is *slower* than libjpeg-turbo
//! (1.05x and 1.44x on the two fixtures: every chroma block is decoded whole and transformed
//! in scalar code where libjpeg-turbo uses SIMD), so the pipeline's call
//! (`decode_quarter(bytes, false)`) declines 4:2:0 and libjpeg-turbo decodes those; the 4:2:0
//! support stays, exact and tested, for when that is made faster.

mod entropy;
mod idct;
#[cfg(test)]
mod tests;

use entropy::{extend, Bits, Huffman, LowTable, SkipTable, TableSpec};
use idct::{idct_1x1, idct_2x2, idct_4x4, idct_low_2x2, ycc_to_rgb};

use super::Pixels;

/// Most scans we read before giving up (the full decoder has the same limit and then fails).
const SCAN_LIMIT: u32 = 500;

/// Decode `bytes` to 8-bit RGB at 1/8 scale, or `None` when the file is not one this fast
/// path reproduces exactly.
pub(crate) fn decode(bytes: &[u8]) -> Option<Pixels> {
    let mut p = Parser::new(bytes, None)?;
    p.run()?;
    p.finish()
}

/// Decode a baseline `bytes` to 8-bit RGB at 1/4 scale (libjpeg-turbo's 1/4 output size),
/// full-resolution components from their low-frequency coefficients ([`idct_low_2x2`]), or
/// `None` when the file is not one this path takes (see the module doc). With `chroma_4x4`
/// false it also declines files with a component subsampled by two on both axes (4:2:0),
/// which the pipeline leaves to libjpeg-turbo: measured slower there (see the module doc).
pub(crate) fn decode_quarter(bytes: &[u8], chroma_4x4: bool) -> Option<Pixels> {
    let mut p = Parser::new(bytes, Some(Kernel::Low))?;
    p.chroma_4x4 = chroma_4x4;
    p.run()?;
    p.finish_quarter()
}

#[cfg(test)]
fn decode_quarter_with(bytes: &[u8], kernel: Kernel) -> Option<Pixels> {
    let mut p = Parser::new(bytes, Some(kernel))?;
    p.run()?;
    p.finish_quarter()
}

/// How the 1/4 path turns a full-resolution component's block into its 2x2 samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    /// Zigzag 0..=4 decoded, the rest skipped, [`idct_low_2x2`]: what the pipeline uses.
    Low,
    /// Zigzag 0..=24 decoded, quadrant-average weights (Q13) for terms 1 and 3
    /// ([`idct::idct_low_2x2_wide`]): the tests measure it against `Low`.
    #[cfg(test)]
    Wide(i64, i64),
    /// Every coefficient decoded, libjpeg's own 2x2 IDCT: libjpeg-turbo's 1/4 decode exactly,
    /// which tests everything but the transform.
    #[cfg(test)]
    Exact,
}

/// What a sequential scan does with one member's blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// 1/8, 1x1 IDCT: the DC, AC skipped.
    Dc,
    /// 1/4, full resolution: [`Kernel::Low`].
    Low,
    #[cfg(test)]
    Wide(i64, i64),
    /// libjpeg's 2x2 IDCT on the whole block (1/8 4:2:0 chroma; 1/4 with [`Kernel::Exact`]).
    Exact2,
    /// 1/4, a component subsampled by two on both axes: libjpeg's 4x4 IDCT on the whole block.
    Exact4,
}

/// One component from the frame header.
#[derive(Debug, Clone)]
struct Component {
    id: u8,
    h: usize,
    v: usize,
    tq: usize,
    /// The IDCT size libjpeg gives this component at the scale decoded (1/8: 1, 2, 4 or 8;
    /// 1/4: 2 or 4; see `jdmaster.c`).
    idct: usize,
    /// Quantisers (zigzag order), latched at the component's first scan as libjpeg does.
    quant: Option<[u16; 64]>,
    /// Blocks per row / column in the MCU-padded grid.
    bw: usize,
    bh: usize,
    /// Blocks actually covering the image (what a single-component scan walks).
    cw: usize,
    ch: usize,
    /// DC coefficient per block, `bw * bh` (components with a 1x1 IDCT, and progressive ones).
    dc: Vec<i16>,
    /// Samples of a baseline component with a 2x2 IDCT at 1/8, `2 bw * 2 bh`; at 1/4 of
    /// every component, `idct bw * idct bh`.
    samples: Vec<u8>,
    /// Lowest DC bit known so far (`None` before the first scan).
    low_bit: Option<u8>,
}

/// One component of a scan: index into `comps` and its DC and AC table numbers.
#[derive(Debug, Clone, Copy)]
struct Member {
    ci: usize,
    dc: usize,
    ac: usize,
}

struct Parser<'a> {
    data: &'a [u8],
    pos: usize,
    width: usize,
    height: usize,
    progressive: bool,
    comps: Vec<Component>,
    hmax: usize,
    vmax: usize,
    quant: [Option<[u16; 64]>; 4],
    dc_tables: [Option<TableSpec>; 4],
    ac_tables: [Option<TableSpec>; 4],
    restart_interval: usize,
    adobe_transform: Option<u8>,
    jfif: bool,
    scans: u32,
    eoi: bool,
    /// `Some` when decoding at 1/4 (baseline only), with the full-resolution transform.
    quarter: Option<Kernel>,
    /// At 1/4, whether to take components subsampled by two on both axes (4x4 IDCT).
    chroma_4x4: bool,
}

fn be16(data: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(*data.get(at)?) << 8 | usize::from(*data.get(at + 1)?))
}

impl<'a> Parser<'a> {
    fn new(data: &'a [u8], quarter: Option<Kernel>) -> Option<Self> {
        if data.get(..2)? != [0xFF, 0xD8] {
            return None;
        }
        Some(Parser {
            data,
            pos: 2,
            width: 0,
            height: 0,
            progressive: false,
            comps: Vec::new(),
            hmax: 1,
            vmax: 1,
            quant: [None; 4],
            dc_tables: [None, None, None, None],
            ac_tables: [None, None, None, None],
            restart_interval: 0,
            adobe_transform: None,
            jfif: false,
            scans: 0,
            eoi: false,
            quarter,
            chroma_4x4: true,
        })
    }

    /// Walk the markers to EOI, decoding or skipping each scan.
    fn run(&mut self) -> Option<()> {
        loop {
            // Markers may be preceded by fill bytes (0xFF).
            if *self.data.get(self.pos)? != 0xFF {
                return None;
            }
            while *self.data.get(self.pos)? == 0xFF {
                self.pos += 1;
            }
            let marker = *self.data.get(self.pos)?;
            self.pos += 1;
            match marker {
                0xD9 => {
                    self.eoi = true;
                    return Some(());
                }
                0xD0..=0xD7 | 0x01 => continue,
                _ => {}
            }
            let len = be16(self.data, self.pos)?;
            let seg = self
                .data
                .get(self.pos + 2..(self.pos + len).max(self.pos + 2))?;
            if len < 2 {
                return None;
            }
            self.pos += len;
            match marker {
                // Baseline and extended sequential, progressive; all Huffman-coded.
                0xC0 | 0xC1 => self.frame(seg, false)?,
                0xC2 => self.frame(seg, true)?,
                // Lossless, hierarchical, arithmetic: the full path.
                0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return None,
                0xC4 => self.huffman(seg)?,
                0xDB => self.quantisers(seg)?,
                0xDD => self.restart_interval = be16(seg, 0)?,
                0xDA => self.scan(seg)?,
                0xE0 => self.jfif |= seg.starts_with(b"JFIF\0"),
                0xEE if seg.starts_with(b"Adobe") => self.adobe_transform = seg.get(11).copied(),
                0xE1..=0xEF | 0xFE => {}
                // DNL, DHP, EXP, JPG extensions and anything unknown.
                _ => return None,
            }
        }
    }

    fn frame(&mut self, seg: &[u8], progressive: bool) -> Option<()> {
        if !self.comps.is_empty() || *seg.first()? != 8 {
            return None; // a second frame, or 12-bit samples
        }
        if progressive && self.quarter.is_some() {
            return None; // 1/4 needs the AC scans: libjpeg's
        }
        self.progressive = progressive;
        self.height = be16(seg, 1)?;
        self.width = be16(seg, 3)?;
        let n = usize::from(*seg.get(5)?);
        if self.width == 0 || self.height == 0 || !(n == 1 || n == 3) {
            return None; // DNL-defined height, or CMYK/other: full path
        }
        let mut comps = Vec::with_capacity(n);
        for i in 0..n {
            let c = seg.get(6 + 3 * i..9 + 3 * i)?;
            let (h, v) = (usize::from(c[1] >> 4), usize::from(c[1] & 15));
            if !(1..=4).contains(&h) || !(1..=4).contains(&v) || c[2] > 3 {
                return None;
            }
            comps.push(Component {
                id: c[0],
                h,
                v,
                tq: usize::from(c[2]),
                idct: 1,
                quant: None,
                bw: 0,
                bh: 0,
                cw: 0,
                ch: 0,
                dc: Vec::new(),
                samples: Vec::new(),
                low_bit: None,
            });
        }
        self.hmax = comps.iter().map(|c| c.h).max()?;
        self.vmax = comps.iter().map(|c| c.v).max()?;
        let mcux = self.width.div_ceil(8 * self.hmax);
        let mcuy = self.height.div_ceil(8 * self.vmax);
        for c in &mut comps {
            c.bw = mcux * c.h;
            c.bh = mcuy * c.v;
            c.cw = (self.width * c.h).div_ceil(self.hmax).div_ceil(8);
            c.ch = (self.height * c.v).div_ceil(self.vmax).div_ceil(8);
            if self.quarter.is_some() {
                // At 1/4 a full-resolution component gets a 2x2 IDCT, one subsampled by two
                // on both axes a 4x4 (no upsampling either way); any other sampling would be
                // upsampled by libjpeg (fancy), which this path does not reproduce.
                c.idct = if (c.h, c.v) == (self.hmax, self.vmax) {
                    2
                } else if self.chroma_4x4 && (2 * c.h, 2 * c.v) == (self.hmax, self.vmax) {
                    4
                } else {
                    return None;
                };
                // The samples are allocated at the component's scan.
                continue;
            }
            // jdmaster.c: double the IDCT while the component still needs no upsampling.
            while c.idct < 8
                && self.hmax.is_multiple_of(c.h * c.idct * 2)
                && self.vmax.is_multiple_of(c.v * c.idct * 2)
            {
                c.idct *= 2;
            }
            // At most 65535² / 64 blocks: about 134 MB of i16 in the worst case, but the
            // caller has already held the source to `max_source_pixels`.
            c.dc = vec![0; c.bw.checked_mul(c.bh)?];
        }
        self.comps = comps;
        Some(())
    }

    fn huffman(&mut self, mut seg: &[u8]) -> Option<()> {
        while !seg.is_empty() {
            let tc_th = seg[0];
            let counts: [u8; 16] = seg.get(1..17)?.try_into().ok()?;
            let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
            let values = seg.get(17..17 + total)?.to_vec();
            let (class, id) = (tc_th >> 4, usize::from(tc_th & 15));
            if class > 1 || id > 3 {
                return None;
            }
            let table = Some(TableSpec::new(counts, values)?);
            if class == 0 {
                self.dc_tables[id] = table;
            } else {
                self.ac_tables[id] = table;
            }
            seg = &seg[17 + total..];
        }
        Some(())
    }

    fn quantisers(&mut self, mut seg: &[u8]) -> Option<()> {
        while !seg.is_empty() {
            let (pq, id) = (seg[0] >> 4, usize::from(seg[0] & 15));
            if id > 3 {
                return None;
            }
            let mut table = [0u16; 64];
            let len = match pq {
                0 => {
                    let values = seg.get(1..65)?;
                    for (q, &v) in table.iter_mut().zip(values) {
                        *q = u16::from(v);
                    }
                    65
                }
                1 => {
                    let values = seg.get(1..129)?;
                    for (q, v) in table.iter_mut().zip(values.chunks_exact(2)) {
                        *q = u16::from_be_bytes([v[0], v[1]]);
                    }
                    129
                }
                _ => return None,
            };
            self.quant[id] = Some(table);
            seg = &seg[len..];
        }
        Some(())
    }

    fn scan(&mut self, seg: &[u8]) -> Option<()> {
        self.scans += 1;
        if self.comps.is_empty() || self.scans > SCAN_LIMIT {
            return None;
        }
        let ns = usize::from(*seg.first()?);
        if !(1..=4).contains(&ns) {
            return None;
        }
        let mut members = Vec::with_capacity(ns);
        for i in 0..ns {
            let id = *seg.get(1 + 2 * i)?;
            let tables = *seg.get(2 + 2 * i)?;
            let ci = self.comps.iter().position(|c| c.id == id)?;
            if tables >> 4 > 3 || tables & 15 > 3 {
                return None; // table numbers are 0..=3 (libjpeg: "Bad Huffman table")
            }
            members.push(Member {
                ci,
                dc: usize::from(tables >> 4),
                ac: usize::from(tables & 15),
            });
        }
        let tail = seg.get(1 + 2 * ns..4 + 2 * ns)?;
        let (ss, se, ah, al) = (tail[0], tail[1], tail[2] >> 4, tail[2] & 15);
        let start = self.pos;
        // Where this scan's entropy-coded data ends: the next marker other than RSTn.
        let end = next_marker(self.data, start);
        self.pos = end;
        // The units a scan walks: MCUs of all members, or one component's blocks in raster.
        let (ux, uy) = if ns == 1 {
            let c = &self.comps[members[0].ci];
            (c.cw, c.ch)
        } else {
            (
                self.width.div_ceil(8 * self.hmax),
                self.height.div_ceil(8 * self.vmax),
            )
        };
        let blocks_per_mcu: usize = members
            .iter()
            .map(|m| self.comps[m.ci].h * self.comps[m.ci].v)
            .sum();
        if ns > 1 && blocks_per_mcu > 10 {
            return None;
        }
        let walk = Walk {
            ux,
            uy,
            interleaved: ns > 1,
            restart_interval: self.restart_interval,
        };
        let data = self.data.get(..end)?;
        let bits = Bits::new(data, start);
        if !self.progressive {
            if (ss, se, ah, al) != (0, 63, 0, 0) {
                return None; // libjpeg only warns; not a file to be exact about
            }
            return self.sequential_scan(&members, walk, bits);
        }
        if ss != 0 {
            return Some(()); // an AC scan: not needed at 1/8
        }
        if se != 0 || al > 13 {
            return None;
        }
        self.dc_scan(&members, walk, bits, ah, al)
    }

    /// Each member's blocks per unit: its sampling factors in an interleaved scan, else one.
    fn shape(&self, members: &[Member], interleaved: bool) -> Vec<(usize, usize)> {
        (members.iter())
            .map(|m| match interleaved {
                true => (self.comps[m.ci].h, self.comps[m.ci].v),
                false => (1, 1),
            })
            .collect()
    }

    /// A progressive DC scan: the first one (Huffman-coded differences) or a refinement (one
    /// raw bit per block). Successive approximation must go first scan, then a bit at a time.
    fn dc_scan(
        &mut self,
        members: &[Member],
        walk: Walk,
        mut bits: Bits<'_>,
        ah: u8,
        al: u8,
    ) -> Option<()> {
        for m in members {
            let c = &mut self.comps[m.ci];
            match (c.low_bit, ah) {
                (None, 0) => {}
                (Some(low), a) if a == low && al + 1 == a => {}
                _ => return None,
            }
            c.low_bit = Some(al);
            if c.quant.is_none() {
                c.quant = Some(self.quant[c.tq]?);
            }
        }
        let first = ah == 0;
        let tables: Vec<Huffman> = match first {
            true => (members.iter())
                .map(|m| self.dc_tables.get(m.dc)?.as_ref()?.build())
                .collect::<Option<_>>()?,
            false => Vec::new(),
        };
        let shape = self.shape(members, walk.interleaved);
        let comps = &mut self.comps;
        walk.run(&shape, &mut bits, |bits, pred, m, bx, by| {
            let c = &mut comps[members[m].ci];
            let slot = c.dc.get_mut(by * c.bw + bx)?;
            if first {
                let s = u32::from(bits.decode(&tables[m])?);
                if s > 11 {
                    return None;
                }
                pred[m] = pred[m].checked_add(extend(bits.get(s)?, s))?;
                *slot = i16::try_from(i64::from(pred[m]) << al).ok()?;
            } else if bits.get(1)? == 1 {
                *slot |= 1 << al;
            }
            Some(())
        })
    }

    /// A baseline (sequential) scan: per block the DC difference, then the AC coefficients
    /// skipped — or, for a component with a 2x2 IDCT, decoded and transformed to its four
    /// samples. At 1/4: the low coefficients of a full-resolution component's blocks decoded
    /// and the rest skipped, a 4:2:0 chroma block decoded whole for libjpeg's 4x4 IDCT.
    fn sequential_scan(
        &mut self,
        members: &[Member],
        walk: Walk,
        mut bits: Bits<'_>,
    ) -> Option<()> {
        let quarter = self.quarter;
        let mode = |c: &Component| match (quarter, c.idct) {
            (None, 1) => Some(Mode::Dc),
            (None, 2) => Some(Mode::Exact2),
            (None, _) => None, // a 4x4 chroma IDCT at 1/8
            (Some(_), 4) => Some(Mode::Exact4),
            (Some(Kernel::Low), _) => Some(Mode::Low),
            #[cfg(test)]
            (Some(Kernel::Wide(w1, w3)), _) => Some(Mode::Wide(w1, w3)),
            #[cfg(test)]
            (Some(Kernel::Exact), _) => Some(Mode::Exact2),
        };
        for m in members {
            let c = &mut self.comps[m.ci];
            let mode = mode(c)?;
            if c.low_bit.is_some() {
                return None; // scanned twice
            }
            c.low_bit = Some(0);
            if c.quant.is_none() {
                c.quant = Some(self.quant[c.tq]?);
            }
            if mode != Mode::Dc {
                let n = c.idct;
                c.samples = super::alloc_zeroed((n * c.bw).checked_mul(n * c.bh)?)?;
            }
        }
        // The tables this scan uses, built now (at most four of each class).
        let build = |specs: &[Option<TableSpec>; 4], id: usize| specs.get(id)?.as_ref()?.build();
        let mut dc: [Option<Huffman>; 4] = Default::default();
        let mut ac: [Option<Huffman>; 4] = Default::default();
        let mut skips: [Option<SkipTable>; 4] = Default::default();
        let mut lows: [Option<LowTable>; 4] = Default::default();
        let skips_ac = |mode| !matches!(mode, Mode::Exact2 | Mode::Exact4);
        let decodes_low = |mode| !matches!(mode, Mode::Dc | Mode::Exact2 | Mode::Exact4);
        for m in members {
            if dc[m.dc].is_none() {
                dc[m.dc] = Some(build(&self.dc_tables, m.dc)?);
            }
            if ac[m.ac].is_none() {
                ac[m.ac] = Some(build(&self.ac_tables, m.ac)?);
            }
            if skips_ac(mode(&self.comps[m.ci])?) && skips[m.ac].is_none() {
                skips[m.ac] = Some(ac[m.ac].as_ref()?.skip_table());
            }
            if decodes_low(mode(&self.comps[m.ci])?) && lows[m.ac].is_none() {
                lows[m.ac] = Some(ac[m.ac].as_ref()?.low_table());
            }
        }
        let mut plans = Vec::with_capacity(members.len());
        for m in members {
            let mode = mode(&self.comps[m.ci])?;
            plans.push((
                dc[m.dc].as_ref()?,
                ac[m.ac].as_ref()?,
                skips[m.ac].as_deref().filter(|_| skips_ac(mode)),
                lows[m.ac].as_deref().filter(|_| decodes_low(mode)),
                mode,
            ));
        }
        let shape = self.shape(members, walk.interleaved);
        let comps = &mut self.comps;
        walk.run(&shape, &mut bits, |bits, pred, m, bx, by| {
            let (dc_table, ac_table, skip, low_table, mode) = plans[m];
            let c = &mut comps[members[m].ci];
            let quant = c.quant.as_ref()?;
            if mode == Mode::Low {
                let mut low = [0i16; 5];
                let diff = bits.low_block(dc_table, ac_table, (skip?, low_table?), &mut low)?;
                pred[m] = pred[m].checked_add(diff)?;
                low[0] = i16::try_from(pred[m]).ok()?;
                return put_2x2(&mut c.samples, c.bw, bx, by, idct_low_2x2(&low, quant));
            }
            #[cfg(test)]
            if let Mode::Wide(w1, w3) = mode {
                let mut low = [0i16; 25];
                let diff = bits.low_block(dc_table, ac_table, (skip?, low_table?), &mut low)?;
                pred[m] = pred[m].checked_add(diff)?;
                low[0] = i16::try_from(pred[m]).ok()?;
                return put_2x2(
                    &mut c.samples,
                    c.bw,
                    bx,
                    by,
                    idct::idct_low_2x2_wide(&low, quant, w1, w3),
                );
            }
            pred[m] = pred[m].checked_add(bits.dc_diff(dc_table)?)?;
            let dc = i16::try_from(pred[m]).ok()?;
            let samples = match mode {
                Mode::Dc => {
                    *c.dc.get_mut(by * c.bw + bx)? = dc;
                    return bits.skip_ac(ac_table, skip?);
                }
                // Handled above, before the DC is decoded here.
                Mode::Low => return None,
                #[cfg(test)]
                Mode::Wide(..) => return None,
                Mode::Exact2 => {
                    let mut block = [0i16; 64];
                    block[0] = dc;
                    let samples = match bits.decode_ac(ac_table, &mut block)? {
                        // No AC: the 2x2 IDCT of a flat block is `(dc * q0 + 4) >> 3` four
                        // times, limited as `idct_2x2` limits it (within the same 16-bit bound).
                        0 => {
                            let d =
                                i16::try_from(i32::from(dc) * i32::from(quant[0] as i16)).ok()?;
                            [idct::saturate((i64::from(d) + 4) >> 3)?; 4]
                        }
                        last => idct_2x2(&block, quant, last)?,
                    };
                    return put_2x2(&mut c.samples, c.bw, bx, by, samples);
                }
                Mode::Exact4 => {
                    let mut block = [0i16; 64];
                    block[0] = dc;
                    let last = bits.decode_ac(ac_table, &mut block)?;
                    idct_4x4(&block, quant, last)?
                }
            };
            // An n x n block of samples (n = 2 or 4), row-major in `samples`.
            let n = c.idct;
            let row = n * c.bw;
            let at = n * by * row + n * bx;
            for (r, src) in samples.chunks_exact(n).take(n).enumerate() {
                let start = at + r * row;
                c.samples.get_mut(start..start + n)?.copy_from_slice(src);
            }
            Some(())
        })
    }

    /// RGB (not YCbCr) components: an Adobe marker saying so, or no JFIF marker and
    /// components named R, G, B (libjpeg's rules).
    fn is_rgb(&self) -> bool {
        self.comps.len() == 3
            && match self.adobe_transform {
                Some(t) => t == 0,
                None => !self.jfif && self.comps.iter().map(|c| c.id).eq([b'R', b'G', b'B']),
            }
    }

    /// The 1/4 RGB image from the components' samples (all at the output scale: no
    /// upsampling), if every component is complete and the file ended properly.
    fn finish_quarter(self) -> Option<Pixels> {
        if !self.eoi || self.comps.iter().any(|c| c.low_bit != Some(0)) {
            return None;
        }
        let (ow, oh) = (self.width.div_ceil(4), self.height.div_ceil(4));
        // Each plane's rows, cropped to the output width.
        let mut rows = Vec::with_capacity(self.comps.len());
        for c in &self.comps {
            let stride = c.idct * c.bw;
            if stride < ow || c.samples.len() < stride.checked_mul(oh)? {
                return None;
            }
            rows.push(c.samples.chunks_exact(stride).take(oh).map(|r| &r[..ow]));
        }
        let rgb = self.is_rgb();
        let mut buf = super::alloc_zeroed(ow.checked_mul(oh)?.checked_mul(3)?)?;
        let out = buf.chunks_exact_mut(ow * 3);
        match rows.as_mut_slice() {
            [gray] => {
                for (line, g) in out.zip(gray) {
                    for (px, &g) in line.chunks_exact_mut(3).zip(g) {
                        px.fill(g);
                    }
                }
            }
            [a, b, c] => {
                for (line, ((a, b), c)) in out.zip(a.zip(b).zip(c)) {
                    if !rgb {
                        idct::ycc_row_to_rgb(a, b, c, line);
                        continue;
                    }
                    let src = a.iter().zip(b).zip(c);
                    for (px, ((&a, &b), &c)) in line.chunks_exact_mut(3).zip(src) {
                        px.copy_from_slice(&[a, b, c]);
                    }
                }
            }
            _ => return None,
        }
        Some(Pixels {
            buf,
            width: u32::try_from(ow).ok()?,
            height: u32::try_from(oh).ok()?,
            alpha: false,
        })
    }

    /// Build the RGB image, if every component is complete and the file ended properly.
    fn finish(mut self) -> Option<Pixels> {
        if !self.eoi || self.comps.iter().any(|c| c.low_bit != Some(0)) {
            return None;
        }
        let (ow, oh) = (self.width.div_ceil(8), self.height.div_ceil(8));
        let progressive = self.progressive;
        // Each component's samples at its IDCT's scale: (samples, width, height, scale).
        let planes: Vec<(Vec<u8>, usize, usize, usize)> = (self.comps.iter_mut())
            .map(|c| {
                if !c.samples.is_empty() {
                    return (std::mem::take(&mut c.samples), 2 * c.bw, 2 * c.bh, 2);
                }
                let q0 = c.quant.map_or(1, |q| q[0]);
                let dc = c.dc.iter().map(|&d| idct_1x1(d, q0)).collect();
                (dc, c.bw, c.bh, 1)
            })
            .collect();
        // Each component at the output size.
        let (hmax, vmax) = (self.hmax, self.vmax);
        let mut full = Vec::with_capacity(planes.len());
        for (c, (plane, pw, ph, scale)) in self.comps.iter().zip(&planes) {
            let mut out = super::alloc_zeroed(ow.checked_mul(oh)?)?;
            if progressive && c.idct >= 2 {
                // Progressive 4:2:0 chroma: libjpeg's 2x2 IDCT reads AC data we skipped;
                // bilinear upsampling of the DC plane is the closest estimate.
                let at = |o: usize, own: usize, max: usize, n: usize| {
                    let f = ((o as f32 + 0.5) * own as f32 / max as f32 - 0.5)
                        .clamp(0.0, (n - 1) as f32);
                    let i = f as usize;
                    (i, (i + 1).min(n - 1), f - i as f32)
                };
                for (i, px) in out.iter_mut().enumerate() {
                    let (x0, x1, wx) = at(i % ow, c.h, hmax, c.cw);
                    let (y0, y1, wy) = at(i / ow, c.v, vmax, c.ch);
                    let p = |x: usize, y: usize| f32::from(plane[y * pw + x]);
                    let top = p(x0, y0) * (1.0 - wx) + p(x1, y0) * wx;
                    let bottom = p(x0, y1) * (1.0 - wx) + p(x1, y1) * wx;
                    *px = (top * (1.0 - wy) + bottom * wy + 0.5) as u8;
                }
            } else {
                // Otherwise libjpeg replicates (no fancy upsampling at 1/8).
                let xmap: Vec<usize> = (0..ow)
                    .map(|x| (x * c.h * scale / hmax).min(pw - 1))
                    .collect();
                for (y, row) in out.chunks_exact_mut(ow).enumerate() {
                    let sy = (y * c.v * scale / vmax).min(ph - 1);
                    let src = plane.get(sy * pw..(sy + 1) * pw)?;
                    for (px, &sx) in row.iter_mut().zip(&xmap) {
                        *px = src[sx];
                    }
                }
            }
            full.push(out);
        }
        let rgb = self.is_rgb();
        let mut buf = super::alloc_zeroed(ow.checked_mul(oh)?.checked_mul(3)?)?;
        match full.as_slice() {
            [gray] => {
                for (px, &g) in buf.chunks_exact_mut(3).zip(gray) {
                    px.fill(g);
                }
            }
            [a, b, c] => {
                for (px, ((&a, &b), &c)) in buf.chunks_exact_mut(3).zip(a.iter().zip(b).zip(c)) {
                    px.copy_from_slice(&if rgb { [a, b, c] } else { ycc_to_rgb(a, b, c) });
                }
            }
            _ => return None,
        }
        Some(Pixels {
            buf,
            width: u32::try_from(ow).ok()?,
            height: u32::try_from(oh).ok()?,
            alpha: false,
        })
    }
}

/// Store the 2x2 samples (row-major) of block `(bx, by)` in a plane `2 bw` samples wide.
#[inline(always)]
fn put_2x2(plane: &mut [u8], bw: usize, bx: usize, by: usize, v: [u8; 4]) -> Option<()> {
    let row = 2 * bw;
    let at = 2 * by * row + 2 * bx;
    let out = plane.get_mut(at..at + row + 2)?;
    (out[0], out[1], out[row], out[row + 1]) = (v[0], v[1], v[2], v[3]);
    Some(())
}

/// How a scan walks its blocks: `ux` x `uy` units (MCUs of every member when interleaved,
/// else one component's blocks), with a restart marker every `restart_interval` units.
#[derive(Debug, Clone, Copy)]
struct Walk {
    ux: usize,
    uy: usize,
    interleaved: bool,
    restart_interval: usize,
}

impl Walk {
    /// Call `block(bits, predictors, member, block x, block y)` for every block in scan
    /// order (`shape`: each member's blocks per unit), checking each restart marker and
    /// resetting the DC predictors there.
    fn run(
        self,
        shape: &[(usize, usize)],
        bits: &mut Bits<'_>,
        mut block: impl FnMut(&mut Bits<'_>, &mut [i32; 4], usize, usize, usize) -> Option<()>,
    ) -> Option<()> {
        let mut pred = [0i32; 4];
        let (mut rst, mut done) = (0u8, 0usize);
        for y in 0..self.uy {
            for x in 0..self.ux {
                if self.restart_interval > 0
                    && done > 0
                    && done.is_multiple_of(self.restart_interval)
                {
                    bits.restart(rst)?;
                    rst = (rst + 1) & 7;
                    pred = [0; 4];
                }
                done += 1;
                for (m, &(nh, nv)) in shape.iter().enumerate() {
                    for by in 0..nv {
                        for bx in 0..nh {
                            block(bits, &mut pred, m, x * nh + bx, y * nv + by)?;
                        }
                    }
                }
            }
        }
        Some(())
    }
}

/// The offset of the next marker at or after `from` that is not a restart marker or a stuffed
/// zero: the end of an entropy-coded segment. The end of the data when there is none.
fn next_marker(data: &[u8], mut from: usize) -> usize {
    while let Some(i) = data.get(from..).and_then(|d| memchr::memchr(0xFF, d)) {
        let at = from + i;
        match data.get(at + 1) {
            Some(0x00 | 0xD0..=0xD7 | 0xFF) => from = at + 1,
            Some(_) => return at,
            None => return data.len(),
        }
    }
    data.len()
}
