//! The reduced inverse DCTs libjpeg-turbo runs at 1/8 scale (`jidctred.c`), its output range
//! limiting, and its YCbCr → RGB conversion (`jdcolor.c`), reproduced exactly.
//!
//! At 1/8 each component gets the smallest IDCT that still lets it skip upsampling
//! (`jdmaster.c`): 1x1 (the DC term) for full-resolution components, 2x2 for a component
//! subsampled by two on both axes (4:2:0 chroma), which reads the coefficients at rows and
//! columns 0, 1, 3, 5 and 7 of the block.

/// Zigzag position → natural (row-major) position in the 8x8 block.
pub(super) const NATURAL: [u8; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// libjpeg's post-IDCT range limit: the sample for a centred value, wrapping as its table
/// does (`value & 1023`: −128..=127 → 0..=255, above → 255, below → 0).
#[inline]
pub(super) fn range_limit(x: i32) -> u8 {
    match x & 1023 {
        i @ 0..=127 => (i + 128) as u8,
        128..=511 => 255,
        512..=895 => 0,
        i => (i - 896) as u8,
    }
}

/// `jpeg_idct_1x1`: the sample of a block from its quantised DC and the DC quantiser.
#[inline]
pub(super) fn idct_1x1(dc: i16, q0: u16) -> u8 {
    // libjpeg multiplies two `short`s; a 16-bit quantiser above 32767 wraps there too.
    let dequantised = i32::from(dc) * i32::from(q0 as i16);
    range_limit((dequantised + 4) >> 3)
}

/// The coefficients `jpeg_idct_2x2` reads, rows and columns 0, 1, 3, 5 and 7 of the block:
/// (zigzag position, row index, column index), indices into those five.
const IDCT_2X2_READS: [(u8, u8, u8); 25] = {
    let mut out = [(0u8, 0u8, 0u8); 25];
    let (mut i, mut k) = (0, 0);
    while k < 64 {
        let natural = NATURAL[k];
        let (row, col) = (natural / 8, natural % 8);
        if (row == 0 || row % 2 == 1) && (col == 0 || col % 2 == 1) {
            out[i] = (k as u8, row.div_ceil(2), col.div_ceil(2));
            i += 1;
        }
        k += 1;
    }
    out
};

/// `jpeg_idct_2x2`: the four samples (row-major) of a block from its coefficients (zigzag
/// order, quantised) and quantisers (zigzag order). `None` wherever libjpeg-turbo's SIMD
/// version and its C version could part ways — a dequantised coefficient or a first-pass value
/// outside 16 bits, an output beyond ±511 (see [`saturate`]) — which no encoder's data reaches:
/// libjpeg then decodes the file itself.
///
/// `last` is the last zigzag position that may be non-zero: the coefficients after it are not
/// read, and only the rows and columns that hold a non-zero one are transformed (the others
/// contribute exact zeros).
pub(super) fn idct_2x2(coefs: &[i16; 64], quant: &[u16; 64], last: usize) -> Option<[u8; 4]> {
    const FIX_0_720959822: i64 = 5906;
    const FIX_0_850430095: i64 = 6967;
    const FIX_1_272758580: i64 = 10426;
    const FIX_3_624509785: i64 = 29692;
    // Dequantised, at [row][column] for rows and columns 0, 1, 3, 5, 7.
    let mut c = [[0i64; 5]; 5];
    let mut cols = 0;
    for &(k, row, col) in &IDCT_2X2_READS {
        let k = usize::from(k);
        if k > last {
            break;
        }
        let d = i32::from(coefs[k]) * i32::from(quant[k] as i16);
        if d != 0 {
            c[usize::from(row)][usize::from(col)] = i64::from(i16::try_from(d).ok()?);
            cols = cols.max(usize::from(col) + 1);
        }
    }
    // DESCALE, and the odd part: terms 1, 3, 5, 7 (CONST_BITS 13, PASS1_BITS 2).
    let descale = |x: i64, n: u32| (x + (1 << (n - 1))) >> n;
    let odd = |v: [i64; 4]| {
        v[3] * -FIX_0_720959822
            + v[2] * FIX_0_850430095
            + v[1] * -FIX_1_272758580
            + v[0] * FIX_3_624509785
    };
    // Pass 1: each column into two rows.
    let mut ws = [[0i32; 5]; 2];
    for col in 0..cols {
        let even = c[0][col] << 15;
        let odd = odd([c[1][col], c[2][col], c[3][col], c[4][col]]);
        // The SIMD version keeps these in 16-bit lanes (saturating); C does not.
        ws[0][col] = i32::from(i16::try_from(descale(even + odd, 13)).ok()?);
        ws[1][col] = i32::from(i16::try_from(descale(even - odd, 13)).ok()?);
    }
    // Pass 2: each row into two samples.
    let mut out = [0u8; 4];
    for (r, w) in ws.iter().enumerate() {
        let even = i64::from(w[0]) << 15;
        let odd = odd([w[1], w[2], w[3], w[4]].map(i64::from));
        out[2 * r] = saturate(descale(even + odd, 20))?;
        out[2 * r + 1] = saturate(descale(even - odd, 20))?;
    }
    Some(out)
}

/// `jpeg_idct_4x4`: the sixteen samples (row-major) of a block from its coefficients (zigzag
/// order, quantised) and quantisers (zigzag order): what libjpeg runs at 1/4 scale on a
/// component subsampled by two on both axes (4:2:0 chroma). It reads every row and column but
/// 4. `None` where libjpeg-turbo's SIMD version (`jsimd_idct_4x4`: 16-bit dequantisation,
/// 16-bit lanes between the passes, 32-bit products) and its C version could part ways, as in
/// [`idct_2x2`].
pub(super) fn idct_4x4(coefs: &[i16; 64], quant: &[u16; 64], last: usize) -> Option<[u8; 16]> {
    const FIX_0_211164243: i64 = 1730;
    const FIX_0_509795579: i64 = 4176;
    const FIX_0_601344887: i64 = 4926;
    const FIX_0_765366865: i64 = 6270;
    const FIX_0_899976223: i64 = 7373;
    const FIX_1_061594337: i64 = 8697;
    const FIX_1_451774981: i64 = 11893;
    const FIX_1_847759065: i64 = 15137;
    const FIX_2_172734803: i64 = 17799;
    const FIX_2_562915447: i64 = 20995;
    let descale = |x: i64, n: u32| (x + (1 << (n - 1))) >> n;
    let dc = i32::from(coefs[0]) * i32::from(quant[0] as i16);
    let dc = i64::from(i16::try_from(dc).ok()?);
    if last == 0 {
        // A flat block (most chroma blocks): pass 1 gives `dc << 2` down every column, pass 2
        // `(that + 16) >> 5`, as libjpeg's zero-AC shortcuts do.
        let ws = i16::try_from(dc << 2).ok()?;
        return Some([saturate(descale(i64::from(ws), 5))?; 16]);
    }
    // Dequantised at [row][column], and which columns hold a non-zero coefficient (the
    // others give exact zeros in pass 1).
    let mut c = [[0i64; 8]; 8];
    let mut cols = 0u8;
    for (k, (&coef, &q)) in coefs.iter().zip(quant).enumerate().take(last + 1) {
        let d = i32::from(coef) * i32::from(q as i16);
        if d != 0 {
            let natural = usize::from(NATURAL[k]);
            c[natural / 8][natural % 8] = i64::from(i16::try_from(d).ok()?);
            cols |= 1 << (natural % 8);
        }
    }
    let in_i32 = |x: i64| i32::try_from(x).is_ok();
    // One 8-point column or row (indices 0..8, 4 unused) into four outputs, before descaling.
    let transform = |v: [i64; 8]| -> Option<[i64; 4]> {
        let tmp0 = v[0] << 14;
        let tmp2 = v[2] * FIX_1_847759065 - v[6] * FIX_0_765366865;
        let (tmp10, tmp12) = (tmp0 + tmp2, tmp0 - tmp2);
        let (z1, z2, z3, z4) = (v[7], v[5], v[3], v[1]);
        let odd0 = -z1 * FIX_0_211164243 + z2 * FIX_1_451774981 - z3 * FIX_2_172734803
            + z4 * FIX_1_061594337;
        let odd2 = -z1 * FIX_0_509795579 - z2 * FIX_0_601344887
            + z3 * FIX_0_899976223
            + z4 * FIX_2_562915447;
        let out = [tmp10 + odd2, tmp12 + odd0, tmp12 - odd0, tmp10 - odd2];
        // The SIMD version sums its products in 32-bit lanes.
        (out.iter().all(|&x| in_i32(x)) && in_i32(tmp2) && in_i32(odd0) && in_i32(odd2))
            .then_some(out)
    };
    // Pass 1: each column (but 4) into four rows, CONST_BITS - PASS1_BITS + 1 = 12.
    let mut ws = [[0i64; 8]; 4];
    for col in 0..8 {
        if col == 4 || cols & (1 << col) == 0 {
            continue;
        }
        let v = [
            c[0][col], c[1][col], c[2][col], c[3][col], c[4][col], c[5][col], c[6][col], c[7][col],
        ];
        let out = transform(v)?;
        for (row, x) in out.into_iter().enumerate() {
            // 16-bit lanes between the passes in the SIMD version (C keeps an int).
            ws[row][col] = i64::from(i16::try_from(descale(x, 12)).ok()?);
        }
    }
    // Pass 2: each row into four samples, CONST_BITS + PASS1_BITS + 3 + 1 = 19.
    let mut out = [0u8; 16];
    for (row, w) in ws.iter().enumerate() {
        for (col, x) in transform(*w)?.into_iter().enumerate() {
            out[row * 4 + col] = saturate(descale(x, 19))?;
        }
    }
    Some(out)
}

/// The low-frequency 2x2 transform the 1/4 path uses for full-resolution components: the
/// four samples (row-major) of a block from its zigzag coefficients 0..=4 (DC, the first
/// horizontal and vertical terms and their product; zigzag 3, the second vertical term,
/// contributes nothing at the sample centres) and the quantisers (zigzag order).
///
/// This is the exact 2-point inverse DCT of the block's low 2x2 coefficients, libjpeg 9's
/// `jpeg_idct_2x2` form: each sample is the 8x8 inverse DCT restricted to those
/// coefficients, evaluated at the centre of its 4x4 quadrant, `(F00 ± F01 ± F10 ± F11) / 8`.
/// There the first cosine is `cos(π/4)`, so the weights are exactly ±1: a smooth ramp keeps
/// its full contrast (a quadrant *average* would weigh F01 by 0.906, libjpeg-turbo's
/// `FIX_3_624509785 / 4`, a slight blur). Clamped, never wrapped: the output is an
/// estimate, not any decoder's, so there is no range table to agree with.
#[inline]
pub(super) fn idct_low_2x2(low: &[i16; 5], quant: &[u16; 64]) -> [u8; 4] {
    let dq = |k: usize| i64::from(low[k]) * i64::from(quant[k]);
    // Plus 128 << 3 for the level shift and 4 for rounding.
    let (f00, f01, f10, f11) = (dq(0) + (128 << 3) + 4, dq(1), dq(2), dq(4));
    let (top0, top1) = (f00 + f10, f01 + f11);
    let (bottom0, bottom1) = (f00 - f10, f01 - f11);
    [
        top0 + top1,
        top0 - top1,
        bottom0 + bottom1,
        bottom0 - bottom1,
    ]
    .map(|x| (x >> 3).clamp(0, 255) as u8)
}

/// As [`idct_low_2x2`], with rows and columns 3 too (zigzag 0..=24) and quadrant-average
/// weights (libjpeg-turbo's 2x2 weights for terms 1 and 3, without 5 and 7): measured against
/// [`idct_low_2x2`] in the tests, kept for that comparison.
#[cfg(test)]
pub(super) fn idct_low_2x2_wide(low: &[i16; 25], quant: &[u16; 64], w1: i64, w3: i64) -> [u8; 4] {
    // Dequantised, at [row][column] for rows and columns 0..4.
    let mut c = [[0i64; 4]; 4];
    for (k, (&v, &q)) in low.iter().zip(quant).enumerate() {
        let natural = usize::from(NATURAL[k]);
        if natural % 8 < 4 && natural / 8 < 4 {
            c[natural / 8][natural % 8] = i64::from(v) * i64::from(q);
        }
    }
    // Weights (Q13) of terms 0..4 at the first half's sample; the second half flips odd ones.
    let half = |h: usize| {
        let s = if h == 0 { 1 } else { -1 };
        [8192, s * w1, 0, s * w3]
    };
    let mut out = [0u8; 4];
    for r in 0..2 {
        for col in 0..2 {
            let (wr, wc) = (half(r), half(col));
            let mut sum = 0i64;
            for v in 0..4 {
                for u in 0..4 {
                    sum += c[v][u] * wr[v] * wc[u];
                }
            }
            let x = (sum + (1 << 28)) >> 29;
            out[r * 2 + col] = (x + 128).clamp(0, 255) as u8;
        }
    }
    out
}

/// The sample for a centred 2x2-IDCT output: within ±511, libjpeg's C range table and
/// libjpeg-turbo's SIMD `jsimd_idct_2x2` (what the linked library runs on x86-64) both
/// saturate to 0..=255. Beyond it they part ways (the table wraps, the SIMD lanes saturate or
/// overflow); only corrupt data gets there, and it goes to libjpeg (`None`).
#[inline]
pub(super) fn saturate(x: i64) -> Option<u8> {
    if x.abs() > 511 {
        return None;
    }
    Some((x + 128).clamp(0, 255) as u8)
}

/// YCbCr to RGB exactly as libjpeg's `jdcolor.c` tables compute it (16-bit fixed point).
pub(super) fn ycc_to_rgb(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    const ONE_HALF: i32 = 1 << 15;
    const fn fix(x: f64) -> i32 {
        (x * 65536.0 + 0.5) as i32
    }
    const R_CR: i32 = fix(1.40200);
    const G_CB: i32 = fix(0.34414);
    const G_CR: i32 = fix(0.71414);
    const B_CB: i32 = fix(1.77200);
    let (y, cb, cr) = (i32::from(y), i32::from(cb) - 128, i32::from(cr) - 128);
    let r = y + ((R_CR * cr + ONE_HALF) >> 16);
    let g = y + ((-G_CB * cb - G_CR * cr + ONE_HALF) >> 16);
    let b = y + ((B_CB * cb + ONE_HALF) >> 16);
    [r, g, b].map(|v| v.clamp(0, 255) as u8)
}

/// [`ycc_to_rgb`] over a row: `out` gets `3 * y.len()` bytes of RGB. Sixteen pixels at a
/// time into planar temporaries, which the compiler vectorises, then interleaved.
pub(super) fn ycc_row_to_rgb(y: &[u8], cb: &[u8], cr: &[u8], out: &mut [u8]) {
    const ONE_HALF: i32 = 1 << 15;
    const R_CR: i32 = 91881; // fix(1.40200)
    const G_CB: i32 = 22554; // fix(0.34414)
    const G_CR: i32 = 46802; // fix(0.71414)
    const B_CB: i32 = 116130; // fix(1.77200)
    const LANES: usize = 16;
    let mut chunks = out.chunks_exact_mut(3 * LANES);
    let (mut ys, mut cbs, mut crs) = (
        y.chunks_exact(LANES),
        cb.chunks_exact(LANES),
        cr.chunks_exact(LANES),
    );
    for (o, ((y, cb), cr)) in (&mut chunks).zip((&mut ys).zip(&mut cbs).zip(&mut crs)) {
        let (mut r, mut g, mut b) = ([0u8; LANES], [0u8; LANES], [0u8; LANES]);
        for i in 0..LANES {
            let (yy, cbb, crr) = (
                i32::from(y[i]),
                i32::from(cb[i]) - 128,
                i32::from(cr[i]) - 128,
            );
            r[i] = (yy + ((R_CR * crr + ONE_HALF) >> 16)).clamp(0, 255) as u8;
            g[i] = (yy + ((-G_CB * cbb - G_CR * crr + ONE_HALF) >> 16)).clamp(0, 255) as u8;
            b[i] = (yy + ((B_CB * cbb + ONE_HALF) >> 16)).clamp(0, 255) as u8;
        }
        for (i, px) in o.chunks_exact_mut(3).enumerate() {
            px.copy_from_slice(&[r[i], g[i], b[i]]);
        }
    }
    let rest = ys
        .remainder()
        .iter()
        .zip(cbs.remainder())
        .zip(crs.remainder());
    for (px, ((&y, &cb), &cr)) in chunks.into_remainder().chunks_exact_mut(3).zip(rest) {
        px.copy_from_slice(&ycc_to_rgb(y, cb, cr));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_limit_matches_libjpeg_table() {
        assert_eq!(range_limit(0), 128);
        assert_eq!(range_limit(-128), 0);
        assert_eq!(range_limit(127), 255);
        assert_eq!(range_limit(300), 255);
        assert_eq!(range_limit(-300), 0);
        // The table wraps at 1024, as libjpeg's does.
        assert_eq!(range_limit(1024), 128);
    }

    #[test]
    fn dc_only_2x2_is_flat_and_equals_1x1() {
        let mut coefs = [0i16; 64];
        let quant = [3u16; 64];
        for dc in [-300, -1, 0, 1, 57, 300] {
            coefs[0] = dc;
            let flat = idct_1x1(dc, 3);
            assert_eq!(idct_2x2(&coefs, &quant, 0), Some([flat; 4]), "dc {dc}");
            assert_eq!(idct_2x2(&coefs, &quant, 63), Some([flat; 4]), "dc {dc}");
        }
    }

    #[test]
    fn first_ac_terms_tilt_the_block() {
        let mut coefs = [0i16; 64];
        let quant = [1u16; 64];
        coefs[1] = 40; // horizontal: (0, 1)
        let [a, b, c, d] = idct_2x2(&coefs, &quant, 63).expect("in range");
        assert!(a > b && c > d && a == c, "{a} {b} {c} {d}");
        coefs[1] = 0;
        coefs[2] = 40; // vertical: (1, 0)
        let [a, b, c, d] = idct_2x2(&coefs, &quant, 63).expect("in range");
        assert!(a > c && a == b && c == d, "{a} {b} {c} {d}");
        coefs[2] = 20_000;
        assert_eq!(idct_2x2(&coefs, &[2; 64], 2), None, "outside 16 bits");
    }

    #[test]
    fn ycc_conversion_matches_libjpeg_tables() {
        assert_eq!(ycc_to_rgb(128, 128, 128), [128, 128, 128]);
        assert_eq!(ycc_to_rgb(255, 128, 128), [255, 255, 255]);
        assert_eq!(ycc_to_rgb(76, 85, 255), [254, 0, 0]);
    }

    #[test]
    fn row_conversion_equals_the_per_pixel_one() {
        // Every (cb, cr) pair against a sweep of y, in rows of odd lengths.
        for len in [1usize, 15, 16, 17, 47, 256] {
            for base in (0..=255u32).step_by(37) {
                let y: Vec<u8> = (0..len)
                    .map(|i| ((base as usize + 7 * i) % 256) as u8)
                    .collect();
                let cb: Vec<u8> = (0..len)
                    .map(|i| ((base as usize * 3 + 11 * i) % 256) as u8)
                    .collect();
                let cr: Vec<u8> = (0..len)
                    .map(|i| ((base as usize * 5 + 13 * i) % 256) as u8)
                    .collect();
                let mut out = vec![0u8; 3 * len];
                ycc_row_to_rgb(&y, &cb, &cr, &mut out);
                for i in 0..len {
                    assert_eq!(
                        out[3 * i..3 * i + 3],
                        ycc_to_rgb(y[i], cb[i], cr[i]),
                        "{len} {i}"
                    );
                }
            }
        }
        for cb in 0..=255u8 {
            for cr in 0..=255u8 {
                let mut out = [0u8; 3 * 16];
                let y: Vec<u8> = (0..16).map(|i| (i * 17) as u8).collect();
                ycc_row_to_rgb(&y, &[cb; 16], &[cr; 16], &mut out);
                for i in 0..16 {
                    assert_eq!(out[3 * i..3 * i + 3], ycc_to_rgb(y[i], cb, cr));
                }
            }
        }
    }
}
