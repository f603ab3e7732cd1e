//! DC-only decoding of progressive JPEGs at 1/8 scale, in safe Rust.
//!
//! At 1/8 scale each 8x8 block becomes one pixel, and libjpeg's 1x1 IDCT reads only the block's
//! DC coefficient: `(dc * q0 + 4) >> 3` plus 128. A progressive file stores every DC coefficient
//! in a few small scans of its own, so a thumbnail needs only those. libjpeg-turbo's scaled
//! decode still entropy-decodes every AC scan into a whole-image coefficient buffer (180 ms and
//! ~90 MB for a 20 MP file); this module Huffman-decodes the DC scans (first and refinement),
//! skips the bytes of every AC scan with `memchr`, and never allocates more than two bytes per
//! block per component (≈ 1/32 of the pixel count).
//!
//! Quality gate: it answers only when the result equals what a full decode at 1/8 would give,
//! up to chroma upsampling: every component's DC must be complete to the last bit (the
//! refinement scans that some scripts put after the AC data are read too), the file must end in
//! EOI, and restart markers must be where they belong. Anything else — baseline, arithmetic,
//! 12-bit, lossless, CMYK, a truncated or odd file — returns `None` and the caller uses the
//! full libjpeg-turbo path, which then also decides what is corrupt. For 4:4:4 the output is
//! byte-identical to libjpeg-turbo's 1/8 decode (tested); subsampled chroma is replicated where
//! libjpeg runs a 2x2 IDCT, which differs by a level or two on soft edges.

use super::Pixels;

/// Most scans we read before giving up (the full decoder has the same limit and then fails).
const SCAN_LIMIT: u32 = 500;

/// Decode `bytes` to 8-bit RGB at 1/8 scale from the DC coefficients, or `None` when the file
/// is not one this fast path handles exactly.
pub(crate) fn decode(bytes: &[u8]) -> Option<Pixels> {
    let mut p = Parser::new(bytes)?;
    p.run()?;
    p.finish()
}

/// One component from the frame header.
#[derive(Debug, Clone)]
struct Component {
    id: u8,
    h: usize,
    v: usize,
    tq: usize,
    /// Quantiser for DC, latched at the component's first scan (as libjpeg does).
    q0: Option<i32>,
    /// Blocks per row / column in the MCU-padded grid.
    bw: usize,
    bh: usize,
    /// Blocks actually covering the image (what a single-component scan walks).
    cw: usize,
    ch: usize,
    /// DC coefficient per block, `bw * bh`.
    dc: Vec<i16>,
    /// Lowest DC bit known so far (`None` before the first DC scan).
    low_bit: Option<u8>,
}

/// A canonical Huffman table for DC differences.
#[derive(Debug, Clone)]
struct Huffman {
    /// Largest code of each length 1..=16, or -1.
    maxcode: [i32; 17],
    /// Index into `values` of the first code of each length, minus that code.
    offset: [i32; 17],
    values: Vec<u8>,
}

impl Huffman {
    fn new(counts: &[u8; 16], values: Vec<u8>) -> Option<Self> {
        let mut maxcode = [-1i32; 17];
        let mut offset = [0i32; 17];
        let (mut code, mut k) = (0i32, 0i32);
        for len in 1..=16 {
            let n = i32::from(counts[len - 1]);
            if n > 0 {
                offset[len] = k - code;
                code += n;
                k += n;
                maxcode[len] = code - 1;
                // A table with more codes than fit in `len` bits is corrupt.
                if code > 1 << len {
                    return None;
                }
            }
            code <<= 1;
        }
        Some(Huffman {
            maxcode,
            offset,
            values,
        })
    }
}

/// Reads the bits of one entropy-coded segment (between markers).
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u64,
    n: u32,
    /// A marker was reached: no more data bytes in this segment.
    at_marker: bool,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8], pos: usize) -> Self {
        Bits {
            data,
            pos,
            acc: 0,
            n: 0,
            at_marker: false,
        }
    }

    /// Top up the accumulator to at least 25 bits, or as far as the segment goes.
    fn fill(&mut self) {
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

    /// The next `k` (≤ 16) bits, or `None` when the segment ran out (truncated scan).
    fn get(&mut self, k: u32) -> Option<u32> {
        if k == 0 {
            return Some(0);
        }
        if self.n < k {
            self.fill();
            if self.n < k {
                return None;
            }
        }
        let v = (self.acc >> (64 - k)) as u32;
        self.acc <<= k;
        self.n -= k;
        Some(v)
    }

    fn decode(&mut self, t: &Huffman) -> Option<u8> {
        let mut code = 0i32;
        for len in 1..=16 {
            code = (code << 1) | self.get(1)? as i32;
            if code <= t.maxcode[len] {
                return t.values.get((code + t.offset[len]) as usize).copied();
            }
        }
        None
    }

    /// Drop the buffered bits and expect restart marker `RST(n)` next.
    fn restart(&mut self, n: u8) -> Option<()> {
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
fn extend(v: u32, s: u32) -> i32 {
    if s == 0 {
        0
    } else if v < 1 << (s - 1) {
        v as i32 - (1 << s) + 1
    } else {
        v as i32
    }
}

struct Parser<'a> {
    data: &'a [u8],
    pos: usize,
    width: usize,
    height: usize,
    comps: Vec<Component>,
    hmax: usize,
    vmax: usize,
    quant: [Option<i32>; 4],
    dc_tables: [Option<Huffman>; 4],
    restart_interval: usize,
    adobe_transform: Option<u8>,
    jfif: bool,
    scans: u32,
    eoi: bool,
}

fn be16(data: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(*data.get(at)?) << 8 | usize::from(*data.get(at + 1)?))
}

impl<'a> Parser<'a> {
    fn new(data: &'a [u8]) -> Option<Self> {
        if data.get(..2)? != [0xFF, 0xD8] {
            return None;
        }
        Some(Parser {
            data,
            pos: 2,
            width: 0,
            height: 0,
            comps: Vec::new(),
            hmax: 1,
            vmax: 1,
            quant: [None; 4],
            dc_tables: [None, None, None, None],
            restart_interval: 0,
            adobe_transform: None,
            jfif: false,
            scans: 0,
            eoi: false,
        })
    }

    /// Walk the markers to EOI, decoding DC scans and skipping AC scans.
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
                0xC2 => self.frame(seg)?,
                // Baseline, extended, lossless, hierarchical, arithmetic: the full path.
                0xC0 | 0xC1 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return None,
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

    fn frame(&mut self, seg: &[u8]) -> Option<()> {
        if !self.comps.is_empty() || *seg.first()? != 8 {
            return None; // a second frame, or 12-bit samples
        }
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
                q0: None,
                bw: 0,
                bh: 0,
                cw: 0,
                ch: 0,
                dc: Vec::new(),
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
            if class == 0 {
                self.dc_tables[id] = Some(Huffman::new(&counts, values)?);
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
            let (q0, len) = match pq {
                0 => (i32::from(*seg.get(1)?), 65),
                1 => (be16(seg, 1)? as i32, 129),
                _ => return None,
            };
            seg.get(..len)?;
            self.quant[id] = Some(q0);
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
            let table = usize::from(seg.get(2 + 2 * i)? >> 4);
            let ci = self.comps.iter().position(|c| c.id == id)?;
            members.push((ci, table));
        }
        let tail = seg.get(1 + 2 * ns..4 + 2 * ns)?;
        let (ss, se, ah, al) = (tail[0], tail[1], tail[2] >> 4, tail[2] & 15);
        let start = self.pos;
        // Where this scan's entropy-coded data ends: the next marker other than RSTn.
        let end = next_marker(self.data, start);
        self.pos = end;
        if ss != 0 {
            return Some(()); // an AC scan: not needed at 1/8
        }
        if se != 0 || al > 13 {
            return None;
        }
        // Successive approximation must go first scan, then one bit at a time.
        for &(ci, _) in &members {
            let c = &mut self.comps[ci];
            match (c.low_bit, ah) {
                (None, 0) => {}
                (Some(low), a) if a == low && al + 1 == a => {}
                _ => return None,
            }
            c.low_bit = Some(al);
            if c.q0.is_none() {
                c.q0 = Some(self.quant[c.tq]?);
            }
        }
        let tables: Vec<Option<&Huffman>> = members
            .iter()
            .map(|&(_, t)| self.dc_tables.get(t).and_then(Option::as_ref))
            .collect();
        if ah == 0 && tables.iter().any(Option::is_none) {
            return None;
        }
        let data = self.data.get(..end)?;
        let mut bits = Bits::new(data, start);
        let mut pred = [0i32; 4];
        let first = ah == 0;

        // The units a scan walks: MCUs of all members, or one component's blocks in raster.
        let (ux, uy) = if ns == 1 {
            let c = &self.comps[members[0].0];
            (c.cw, c.ch)
        } else {
            (
                self.width.div_ceil(8 * self.hmax),
                self.height.div_ceil(8 * self.vmax),
            )
        };
        let blocks_per_mcu: usize = members
            .iter()
            .map(|&(ci, _)| self.comps[ci].h * self.comps[ci].v)
            .sum();
        if ns > 1 && blocks_per_mcu > 10 {
            return None;
        }
        let mut rst = 0u8;
        let mut done = 0usize;
        for y in 0..uy {
            for x in 0..ux {
                if self.restart_interval > 0
                    && done > 0
                    && done.is_multiple_of(self.restart_interval)
                {
                    bits.restart(rst)?;
                    rst = (rst + 1) & 7;
                    pred = [0; 4];
                }
                done += 1;
                for (m, &(ci, _)) in members.iter().enumerate() {
                    let c = &mut self.comps[ci];
                    let (nh, nv) = if ns == 1 { (1, 1) } else { (c.h, c.v) };
                    for by in 0..nv {
                        for bx in 0..nh {
                            let idx = (y * nv + by) * c.bw + x * nh + bx;
                            let slot = c.dc.get_mut(idx)?;
                            if first {
                                let s = u32::from(bits.decode(tables[m]?)?);
                                if s > 11 {
                                    return None;
                                }
                                let diff = extend(bits.get(s)?, s);
                                pred[m] = pred[m].checked_add(diff)?;
                                *slot = i16::try_from(pred[m] << al).ok()?;
                            } else if bits.get(1)? == 1 {
                                *slot |= 1 << al;
                            }
                        }
                    }
                }
            }
        }
        Some(())
    }

    /// Build the RGB image, if every component's DC is complete and the file ended properly.
    fn finish(self) -> Option<Pixels> {
        if !self.eoi || self.comps.iter().any(|c| c.low_bit != Some(0)) {
            return None;
        }
        let (ow, oh) = (self.width.div_ceil(8), self.height.div_ceil(8));
        // Each component's 1/8 plane, the 1x1 IDCT of libjpeg (jidctred.c).
        let planes: Vec<Vec<u8>> = self
            .comps
            .iter()
            .map(|c| {
                let q = c.q0.unwrap_or(1);
                c.dc.iter()
                    .map(|&d| ((((i32::from(d) * q) + 4) >> 3) + 128).clamp(0, 255) as u8)
                    .collect()
            })
            .collect();
        let mut buf = super::alloc_zeroed(ow.checked_mul(oh)?.checked_mul(3)?)?;
        // libjpeg-turbo (jdmaster.c, v6b rules) gives a component subsampled by 2 on both axes
        // a 2x2 IDCT at 1/8, which reads AC coefficients we do not have; bilinear upsampling of
        // the DC plane is the closest estimate. Every other component it replicates, as here.
        let smooth: Vec<bool> = (self.comps.iter())
            .map(|c| self.hmax.is_multiple_of(c.h * 2) && self.vmax.is_multiple_of(c.v * 2))
            .collect();
        let sample = |ci: usize, x: usize, y: usize| -> u8 {
            let c = &self.comps[ci];
            let plane = &planes[ci];
            if !smooth[ci] {
                let (sx, sy) = (x * c.h / self.hmax, y * c.v / self.vmax);
                return plane[sy.min(c.bh - 1) * c.bw + sx.min(c.bw - 1)];
            }
            let at = |o: usize, own: usize, max: usize, n: usize| {
                let f =
                    ((o as f32 + 0.5) * own as f32 / max as f32 - 0.5).clamp(0.0, (n - 1) as f32);
                let i = f as usize;
                (i, (i + 1).min(n - 1), f - i as f32)
            };
            let (x0, x1, wx) = at(x, c.h, self.hmax, c.cw);
            let (y0, y1, wy) = at(y, c.v, self.vmax, c.ch);
            let p = |x: usize, y: usize| f32::from(plane[y * c.bw + x]);
            let top = p(x0, y0) * (1.0 - wx) + p(x1, y0) * wx;
            let bottom = p(x0, y1) * (1.0 - wx) + p(x1, y1) * wx;
            (top * (1.0 - wy) + bottom * wy + 0.5) as u8
        };
        let rgb = self.comps.len() == 3
            && match self.adobe_transform {
                Some(t) => t == 0,
                None => !self.jfif && self.comps.iter().map(|c| c.id).eq([b'R', b'G', b'B']),
            };
        for y in 0..oh {
            for x in 0..ow {
                let px = &mut buf[(y * ow + x) * 3..][..3];
                match self.comps.len() {
                    1 => px.fill(sample(0, x, y)),
                    _ if rgb => {
                        px.copy_from_slice(&[sample(0, x, y), sample(1, x, y), sample(2, x, y)])
                    }
                    _ => px.copy_from_slice(&ycc_to_rgb(
                        sample(0, x, y),
                        sample(1, x, y),
                        sample(2, x, y),
                    )),
                }
            }
        }
        Some(Pixels {
            buf,
            width: u32::try_from(ow).ok()?,
            height: u32::try_from(oh).ok()?,
            alpha: false,
        })
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

/// YCbCr to RGB exactly as libjpeg's `jdcolor.c` tables compute it (16-bit fixed point).
fn ycc_to_rgb(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    const ONE_HALF: i32 = 1 << 15;
    const fn fix(x: f64) -> i32 {
        (x * 65536.0 + 0.5) as i32
    }
    let (y, cb, cr) = (i32::from(y), i32::from(cb) - 128, i32::from(cr) - 128);
    let r = y + ((fix(1.40200) * cr + ONE_HALF) >> 16);
    let g = y + ((-fix(0.34414) * cb - fix(0.71414) * cr + ONE_HALF) >> 16);
    let b = y + ((fix(1.77200) * cb + ONE_HALF) >> 16);
    [r, g, b].map(|v| v.clamp(0, 255) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use turbojpeg::{Compressor, Decompressor, Image, PixelFormat, ScalingFactor, Subsamp};

    /// Smooth gradients with a hard-edged square and a little deterministic texture.
    fn synthetic(w: usize, h: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                let edge = (x / 13 + y / 7) % 2 == 0 && x > w / 4 && x < w * 3 / 4;
                let t = ((x * 7 + y * 13) % 17) as u8;
                v.push((x * 255 / w.max(1)) as u8 ^ t);
                v.push(if edge {
                    240
                } else {
                    (y * 255 / h.max(1)) as u8
                });
                v.push(((x + y) * 3 % 256) as u8);
            }
        }
        v
    }

    fn jpeg(w: usize, h: usize, subsamp: Subsamp, progressive: bool) -> Vec<u8> {
        let mut rgb = synthetic(w, h);
        let mut format = PixelFormat::RGB;
        if subsamp == Subsamp::Gray {
            rgb = rgb.chunks(3).map(|p| p[1]).collect();
            format = PixelFormat::GRAY;
        }
        let mut c = Compressor::new().expect("compressor");
        c.set_quality(90).expect("quality");
        c.set_subsamp(subsamp).expect("subsamp");
        c.set_progressive(progressive).expect("progressive");
        let image = Image {
            pixels: rgb.as_slice(),
            width: w,
            pitch: w * format.size(),
            height: h,
            format,
        };
        c.compress_to_vec(image).expect("compress")
    }

    /// libjpeg-turbo's own 1/8 decode, the reference.
    fn turbo_eighth(bytes: &[u8]) -> (Vec<u8>, u32, u32) {
        let mut d = Decompressor::new().expect("decompressor");
        let header = d.read_header(bytes).expect("header");
        let f = ScalingFactor::ONE_EIGHTH;
        let (w, h) = (f.scale(header.width), f.scale(header.height));
        let mut buf = vec![0; w * h * 3];
        d.set_scaling_factor(f).expect("scale");
        let image = Image {
            pixels: buf.as_mut_slice(),
            width: w,
            pitch: w * 3,
            height: h,
            format: PixelFormat::RGB,
        };
        d.decompress(bytes, image).expect("decompress");
        (buf, w as u32, h as u32)
    }

    fn psnr(a: &[u8], b: &[u8]) -> f64 {
        let mse = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
            .sum::<f64>()
            / a.len() as f64;
        10.0 * (255.0f64.powi(2) / mse.max(1e-9)).log10()
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(path).expect("fixture present")
    }

    /// The DC-only result and libjpeg-turbo's 1/8 decode, same size asserted.
    fn both(bytes: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let dc = decode(bytes).expect("DC-only path takes this file");
        let (reference, w, h) = turbo_eighth(bytes);
        assert_eq!((dc.width, dc.height), (w, h));
        assert!(!dc.alpha);
        (dc.buf, reference)
    }

    #[test]
    fn full_resolution_chroma_is_byte_identical_to_libjpeg_at_any_size() {
        for (w, h) in [(1, 1), (8, 8), (9, 17), (64, 3), (317, 197), (640, 480)] {
            for subsamp in [Subsamp::None, Subsamp::Gray] {
                let (dc, reference) = both(&jpeg(w, h, subsamp, true));
                assert!(dc == reference, "{w}x{h} {subsamp:?} differs");
            }
        }
    }

    #[test]
    fn chroma_subsampled_on_one_axis_is_byte_identical_too() {
        // libjpeg replicates these at 1/8, as we do.
        for (w, h) in [(15, 9), (317, 197)] {
            for subsamp in [Subsamp::Sub2x1, Subsamp::Sub1x2] {
                let (dc, reference) = both(&jpeg(w, h, subsamp, true));
                assert!(dc == reference, "{w}x{h} {subsamp:?} differs");
            }
        }
    }

    #[test]
    fn chroma_subsampled_on_both_axes_is_close_on_photos() {
        // libjpeg runs a 2x2 IDCT on 4:2:0 chroma at 1/8, with AC data we skip; on
        // pixel-scale colour stripes that differs a lot, on photographs little.
        let (w, h) = (317, 197);
        let (dc, reference) = both(&jpeg(w, h, Subsamp::Sub2x2, true));
        assert_eq!(dc.len(), reference.len());
        let (dc, reference) = both(&fixture("progressive-2560x1600.jpg"));
        let db = psnr(&dc, &reference);
        assert!(db > 36.0, "standard scan script, 4:2:0 photo: {db:.1} dB");
    }

    #[test]
    fn restart_markers_and_separate_dc_scans_decode() {
        let (dc, reference) = both(&fixture("prog444-rst.jpg"));
        assert!(dc == reference, "4:4:4 with restarts differs");
        // A dense 1/8-scale crop: the hardest case for 4:2:0 (about 32 dB).
        let (dc, reference) = both(&fixture("prog420-sepdc-rst.jpg"));
        let db = psnr(&dc, &reference);
        assert!(db > 30.0, "non-interleaved DC scans: {db:.1} dB");
    }

    #[test]
    fn files_it_does_not_handle_exactly_fall_back() {
        // Baseline, CMYK, grayscale baseline: not progressive or not 1/3 components.
        for name in [
            "photo-2560x1600.jpg",
            "cmyk-2560x1600.jpg",
            "gray-2560x1600.jpg",
        ] {
            assert!(decode(&fixture(name)).is_none(), "{name}");
        }
        let mut c = Compressor::new().expect("compressor");
        c.set_arithmetic(true).expect("arithmetic");
        c.set_progressive(true).expect("progressive");
        let rgb = synthetic(32, 32);
        let image = Image {
            pixels: rgb.as_slice(),
            width: 32,
            pitch: 96,
            height: 32,
            format: PixelFormat::RGB,
        };
        let arithmetic = c.compress_to_vec(image).expect("compress");
        assert!(decode(&arithmetic).is_none(), "arithmetic coding");
        assert!(decode(b"").is_none());
        assert!(decode(b"\xff\xd8").is_none());
    }

    #[test]
    fn truncated_files_fall_back_wherever_they_are_cut() {
        // Cut inside the DC scans, inside the AC data, and just before EOI: the full decoder
        // must see every one of them (and call them corrupt).
        let bytes = fixture("prog420-sepdc-rst.jpg");
        for cut in (4..bytes.len())
            .step_by(97)
            .chain([bytes.len() - 2, bytes.len() - 1])
        {
            assert!(decode(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        assert!(decode(&bytes).is_some());
    }

    #[test]
    fn bit_flips_never_panic() {
        let bytes = fixture("prog444-rst.jpg");
        let mut flipped = bytes.clone();
        for i in (0..bytes.len()).step_by(7) {
            for bit in [0, 3, 7] {
                flipped[i] ^= 1 << bit;
                let _ = decode(&flipped);
                flipped[i] ^= 1 << bit;
            }
        }
    }

    #[test]
    fn ycc_conversion_matches_libjpeg_tables() {
        assert_eq!(ycc_to_rgb(128, 128, 128), [128, 128, 128]);
        assert_eq!(ycc_to_rgb(255, 128, 128), [255, 255, 255]);
        assert_eq!(ycc_to_rgb(76, 85, 255), [254, 0, 0]);
    }
}
