//! Content-aware crop placement for `g_auto` (imgproxy's `g:sm`, after smartcrop.js): where a
//! window of fixed size should sit inside a region of decoded pixels to keep the most
//! interesting part. Three steps, each bounded by the size of a small score map, never by the
//! image:
//!
//! 1. **Score map.** The part of the image under the region is cut into at most
//!    [`MAX_SIDE`] x [`MAX_SIDE`] cells (the region's aspect kept; one cell per pixel when the
//!    region is that small already), and each cell holds the mean interest of its pixels
//!    (a box average). A pixel's interest is the sum of
//!    - its edge strength: `|dx| + |dy|` of luma (BT.601 weights, premultiplied by alpha)
//!      against its left and upper neighbours, less a small noise floor so that JPEG grain
//!      and dithering on flat areas count for nothing;
//!    - its saturation: chroma (max - min of R, G, B), at a quarter of the edge weight, so a
//!      flat coloured sky does not outweigh texture;
//!    - a small bonus for skin-like tones (the classic RGB rule);
//!
//!    all multiplied by its alpha, so that fully transparent pixels count for nothing whatever
//!    colour they hide. A large region is sampled rather than read whole: every `step`-th
//!    pixel of every `step`-th row, `step` being two thirds of a cell (so every cell has a
//!    sample), each sample still compared with its immediate neighbours, so one-pixel texture
//!    is seen (a 2000 px image reads about a sixteenth of its pixels).
//!    Only what stands out counts: a cell's weight is `(mean - map mean)²`, zero below the
//!    map's mean, so texture spread over the whole picture (grass, water, a coloured
//!    background) weighs nothing and one salient spot (a ladybird on a leaf) outweighs a wide,
//!    mildly busy area.
//! 2. **Summed-area table** of the cell weights, so the interest inside any window is four
//!    look-ups. A window's edges fall between cell boundaries; the table is interpolated
//!    bilinearly there, which is exact for a map of constant cells.
//! 3. **Search** along the free axis (a fill crop is free along one axis only; both are
//!    handled): an even number of candidate positions at most a cell apart, so that the exact
//!    centre is one of them. A candidate scores its interest plus a slight centre bias, linear
//!    in its distance from the centre and worth [`BIAS`] of an average window's interest at the
//!    far ends; the highest score wins, the first one on an exact tie. A flat image therefore
//!    gets the centred window.
//!
//! Degenerate input never panics and never yields NaN: an axis along which the window is not
//! smaller than the region is centred (the window's centre on the region's), and an empty
//! image, a region outside the image or a buffer shorter than `width x height` pixels give the
//! centred window on both axes. Pure and deterministic; the only allocations are the score map
//! and its table (at most about 1 MB).

use super::Pixels;
use crate::layout::Rect;

/// Long side of the score map, in cells.
const MAX_SIDE: usize = 256;
/// Most candidate positions along one axis when only that axis is free (even).
const MAX_STEPS_1D: usize = 256;
/// Most candidate positions along each axis when both are free (even).
const MAX_STEPS_2D: usize = 128;
/// Luma gradient (`|dx| + |dy|`, 0..=510) counted as flat.
const NOISE_FLOOR: u32 = 4;
/// Interest of a skin-toned pixel on top of its edges and chroma.
const SKIN_BONUS: u32 = 24;
/// Centre bias at the far ends, as a fraction of an average window's interest.
const BIAS: f64 = 0.1;

/// Where a `window` (width, height, in `img` pixels) should sit inside `region` (in `img`
/// pixels) to keep the most interesting part: returns the window's top-left (x, y), inside
/// region. Deterministic.
///
/// Along an axis where the window is not smaller than the region the window is centred on the
/// region (so x < `region.x` if the window is wider); along a free axis x stays in
/// `[region.x, region.x + region.width - window.0]`. Non-finite inputs count as 0.
pub(crate) fn place(img: &Pixels, region: Rect, window: (f64, f64)) -> (f64, f64) {
    let r = Rect {
        x: finite(region.x),
        y: finite(region.y),
        width: finite(region.width).max(0.0),
        height: finite(region.height).max(0.0),
    };
    let win = (finite(window.0).max(0.0), finite(window.1).max(0.0));
    let free = (r.width - win.0, r.height - win.1);
    let centred = (r.x + free.0 / 2.0, r.y + free.1 / 2.0);
    let chosen = if free.0 > 0.0 || free.1 > 0.0 {
        match ScoreMap::build(img, r) {
            Some(map) => map.search(r, win, free, centred),
            None => centred,
        }
    } else {
        centred
    };
    let x = if free.0 > 0.0 {
        chosen.0.clamp(r.x, r.x + free.0)
    } else {
        centred.0
    };
    let y = if free.1 > 0.0 {
        chosen.1.clamp(r.y, r.y + free.1)
    } else {
        centred.1
    };
    (finite(x), finite(y))
}

/// `v`, or 0 when it is NaN or infinite.
fn finite(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

/// The interest of the region, cell by cell, as a summed-area table.
struct ScoreMap {
    /// `(w + 1) x (h + 1)`: `sat[j * (w + 1) + i]` is the interest of cells `[0, i) x [0, j)`.
    sat: Vec<f64>,
    /// Cells across and down (both at least 1).
    w: usize,
    h: usize,
    /// Image pixel of the map's top-left corner.
    x0: f64,
    y0: f64,
    /// Cells per image pixel.
    sx: f64,
    sy: f64,
}

/// The pixel span `[start, end)` of the image covered by `[from, from + len)`, clamped to `size`.
fn span(from: f64, len: f64, size: usize) -> (usize, usize) {
    // `as` saturates (and maps NaN to 0), so a far-off region comes out empty.
    let start = (from.floor().max(0.0) as usize).min(size);
    let end = ((from + len).ceil().max(0.0) as usize).clamp(start, size);
    (start, end)
}

/// The cell (of `cells` over `len` pixels) holding the pixel `offset` pixels from the start.
fn cell(offset: usize, cells: usize, len: usize) -> usize {
    let c = (offset as u64).saturating_mul(cells as u64) / (len.max(1) as u64);
    (c as usize).min(cells.saturating_sub(1))
}

/// `len` copies of `v`, or `None` when the allocator refuses.
fn try_vec<T: Clone>(v: T, len: usize) -> Option<Vec<T>> {
    let mut out = Vec::new();
    out.try_reserve_exact(len).ok()?;
    out.resize(len, v);
    Some(out)
}

/// What the sampling loop needs to know about the region and the map.
#[derive(Clone, Copy)]
struct Grid {
    /// Image width in pixels (the row stride, in pixels).
    iw: usize,
    ih: usize,
    /// The region's first pixel.
    x0: usize,
    y0: usize,
    /// Cells across.
    w: usize,
    /// Every `step`-th pixel of every `step`-th row is sampled.
    step: usize,
}

impl ScoreMap {
    /// The map of `region` in `img`, or `None` when there is nothing to score (empty image or
    /// region, short buffer, allocation refused).
    fn build(img: &Pixels, region: Rect) -> Option<ScoreMap> {
        let iw = usize::try_from(img.width).ok()?;
        let ih = usize::try_from(img.height).ok()?;
        let channels = if img.alpha { 4 } else { 3 };
        let need = iw.checked_mul(ih)?.checked_mul(channels)?;
        if iw == 0 || ih == 0 || img.buf.len() < need {
            return None;
        }
        let (x0, x1) = span(region.x, region.width, iw);
        let (y0, y1) = span(region.y, region.height, ih);
        let (pw, ph) = (x1 - x0, y1 - y0);
        if pw == 0 || ph == 0 {
            return None;
        }
        let long = pw.max(ph);
        let (w, h) = if long <= MAX_SIDE {
            (pw, ph)
        } else {
            let scale =
                |n: usize| (n.saturating_mul(MAX_SIDE).saturating_add(long / 2) / long).clamp(1, n);
            (scale(pw), scale(ph))
        };
        let step = ((pw / w).min(ph / h) * 2 / 3).max(1);
        let grid = Grid {
            iw,
            ih,
            x0,
            y0,
            w,
            step,
        };

        // Samples per cell column and per cell row (cells differ by a pixel in size).
        let mut col_n = try_vec(0u32, w)?;
        for x in (x0..x1).step_by(step) {
            if let Some(n) = col_n.get_mut(cell(x - x0, w, pw)) {
                *n += 1;
            }
        }
        let mut row_n = try_vec(0u32, h)?;
        for y in (y0..y1).step_by(step) {
            if let Some(n) = row_n.get_mut(cell(y - y0, h, ph)) {
                *n += 1;
            }
        }

        let mut sums = try_vec(0u64, w.checked_mul(h)?)?;
        if img.alpha {
            accumulate::<4>(&img.buf, grid, (&col_n, &row_n), &mut sums);
        } else {
            accumulate::<3>(&img.buf, grid, (&col_n, &row_n), &mut sums);
        }

        // Cell means, then only what stands out counts: (mean - the map's mean)², zero below
        // it. Texture spread over the whole picture (grass, water, a green background) then
        // weighs nothing, and one salient spot outweighs a wide, mildly busy area.
        let mut means = try_vec(0f64, w.checked_mul(h)?)?;
        for ((cells, &rn), out) in sums
            .chunks_exact(w)
            .zip(&row_n)
            .zip(means.chunks_exact_mut(w))
        {
            for ((&s, &cn), m) in cells.iter().zip(&col_n).zip(out.iter_mut()) {
                let n = u64::from(cn) * u64::from(rn);
                if n > 0 {
                    *m = s as f64 / n as f64;
                }
            }
        }
        let average = means.iter().sum::<f64>() / means.len().max(1) as f64;
        for m in &mut means {
            let above = (*m - average).max(0.0);
            *m = above * above;
        }
        let mut sat = try_vec(0f64, (w + 1).checked_mul(h + 1)?)?;
        for (cy, cells) in means.chunks_exact(w).enumerate() {
            let mut row = 0.0;
            for (cx, &m) in cells.iter().enumerate() {
                row += m;
                let above = sat.get(cy * (w + 1) + cx + 1).copied().unwrap_or(0.0);
                if let Some(v) = sat.get_mut((cy + 1) * (w + 1) + cx + 1) {
                    *v = above + row;
                }
            }
        }
        Some(ScoreMap {
            sat,
            w,
            h,
            x0: x0 as f64,
            y0: y0 as f64,
            sx: w as f64 / pw as f64,
            sy: h as f64 / ph as f64,
        })
    }

    /// The table at the fractional cell corner `(u, v)`, bilinearly interpolated.
    fn at(&self, u: f64, v: f64) -> f64 {
        let u = u.clamp(0.0, self.w as f64);
        let v = v.clamp(0.0, self.h as f64);
        let i = (u.floor() as usize).min(self.w - 1);
        let j = (v.floor() as usize).min(self.h - 1);
        let (fu, fv) = (u - i as f64, v - j as f64);
        let stride = self.w + 1;
        let get = |i: usize, j: usize| self.sat.get(j * stride + i).copied().unwrap_or(0.0);
        let top = get(i, j) * (1.0 - fu) + get(i + 1, j) * fu;
        let bottom = get(i, j + 1) * (1.0 - fu) + get(i + 1, j + 1) * fu;
        top * (1.0 - fv) + bottom * fv
    }

    /// The interest inside the window at image pixel `(x, y)` of size `win`.
    fn window_sum(&self, (x, y): (f64, f64), win: (f64, f64)) -> f64 {
        let u0 = (x - self.x0) * self.sx;
        let u1 = (x + win.0 - self.x0) * self.sx;
        let v0 = (y - self.y0) * self.sy;
        let v1 = (y + win.1 - self.y0) * self.sy;
        self.at(u1, v1) - self.at(u0, v1) - self.at(u1, v0) + self.at(u0, v0)
    }

    /// The best top-left for `win` in `region`, `free` being region minus window per axis.
    fn search(
        &self,
        region: Rect,
        win: (f64, f64),
        free: (f64, f64),
        centred: (f64, f64),
    ) -> (f64, f64) {
        let both = free.0 > 0.0 && free.1 > 0.0;
        let max = if both { MAX_STEPS_2D } else { MAX_STEPS_1D };
        let steps = |free: f64, per_px: f64| -> usize {
            if free > 0.0 {
                // Even, so the centre is a candidate; at most a cell apart.
                let half = (free * per_px / 2.0).ceil().clamp(1.0, (max / 2) as f64);
                2 * half as usize
            } else {
                0
            }
        };
        let (nx, ny) = (steps(free.0, self.sx), steps(free.1, self.sy));
        let pos = |origin: f64, free: f64, n: usize, i: usize, centre: f64| {
            if n == 0 {
                centre
            } else {
                origin + free * (i as f64 / n as f64)
            }
        };
        // Distance from the centre, -1..=1 along a free axis, 0 along a fixed one.
        let off = |n: usize, i: usize| {
            if n == 0 {
                0.0
            } else {
                (2.0 * i as f64 - n as f64) / n as f64
            }
        };
        let axes = if both { 2.0 } else { 1.0 };
        let frac = |w: f64, r: f64| if r > 0.0 { (w / r).min(1.0) } else { 1.0 };
        let total = self.sat.last().copied().unwrap_or(0.0);
        let bias = BIAS * total * frac(win.0, region.width) * frac(win.1, region.height) + 1e-9;

        let mut best = (f64::NEG_INFINITY, centred);
        for j in 0..=ny {
            let y = pos(region.y, free.1, ny, j, centred.1);
            let dy = off(ny, j);
            for i in 0..=nx {
                let x = pos(region.x, free.0, nx, i, centred.0);
                let dx = off(nx, i);
                let d = ((dx * dx + dy * dy) / axes).sqrt();
                let score = self.window_sum((x, y), win) + bias * (1.0 - d);
                if score > best.0 {
                    best = (score, (x, y));
                }
            }
        }
        best.1
    }
}

/// Adds every sampled pixel's interest (times its alpha) to its cell of `sums` (`grid.w`
/// across). Sampled pixels run in cell order, `col_n[cx]` of them in cell column `cx` and
/// `row_n[cy]` rows in cell row `cy`. `CH` is 3 (RGB) or 4 (RGBA); `buf` holds at least
/// `iw x ih` pixels.
fn accumulate<const CH: usize>(
    buf: &[u8],
    g: Grid,
    (col_n, row_n): (&[u32], &[u32]),
    sums: &mut [u64],
) {
    let stride = g.iw * CH;
    let pixel = |row: &[u8], x: usize| -> [u8; 4] {
        let mut p = [0, 0, 0, 255];
        if let Some(s) = row.get(x * CH..x * CH + CH) {
            p[..CH].copy_from_slice(s);
        }
        p
    };
    let mut y = g.y0;
    for (&rows, out) in row_n.iter().zip(sums.chunks_exact_mut(g.w)) {
        for _ in 0..rows {
            // The row above (below for the first row) gives the vertical gradient.
            let ny = if y > 0 { y - 1 } else { (y + 1).min(g.ih - 1) };
            let (Some(row), Some(up)) = (
                buf.get(y * stride..(y + 1) * stride),
                buf.get(ny * stride..(ny + 1) * stride),
            ) else {
                return;
            };
            let mut x = g.x0;
            for (&cols, sum) in col_n.iter().zip(out.iter_mut()) {
                for _ in 0..cols {
                    let p = pixel(row, x);
                    let a = u32::from(p[3]);
                    if a > 0 {
                        let nx = if x > 0 { x - 1 } else { (x + 1).min(g.iw - 1) };
                        let l = luma::<CH>(p);
                        let dx = l.abs_diff(luma::<CH>(pixel(row, nx)));
                        let dy = l.abs_diff(luma::<CH>(pixel(up, x)));
                        let [r, gr, b] = [p[0], p[1], p[2]].map(u32::from);
                        let chroma = r.max(gr).max(b) - r.min(gr).min(b);
                        let skin = if is_skin(r, gr, b) { SKIN_BONUS } else { 0 };
                        let edge = ((dx + dy) >> 8).saturating_sub(NOISE_FLOOR);
                        *sum += u64::from((edge + chroma / 4 + skin) * a);
                    }
                    x += g.step;
                }
            }
            y += g.step;
        }
    }
}

/// BT.601 luma, premultiplied by alpha for RGBA, 0..=65280.
fn luma<const CH: usize>([r, g, b, a]: [u8; 4]) -> u32 {
    let l = 77 * u32::from(r) + 150 * u32::from(g) + 29 * u32::from(b);
    if CH == 4 {
        l * u32::from(a) / 255
    } else {
        l
    }
}

/// The classic RGB skin-tone rule (Kovac et al., daylight).
fn is_skin(r: u32, g: u32, b: u32) -> bool {
    r > 95 && g > 40 && b > 20 && r > g && r > b && r - g.min(b) > 15 && r - g > 15
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `w x h` image whose pixel `(x, y)` is `f(x, y)` (RGBA; alpha dropped unless `alpha`).
    fn image(w: u32, h: u32, alpha: bool, mut f: impl FnMut(u32, u32) -> [u8; 4]) -> Pixels {
        let mut buf = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let p = f(x, y);
                buf.extend_from_slice(if alpha { &p[..] } else { &p[..3] });
            }
        }
        Pixels {
            buf,
            width: w,
            height: h,
            alpha,
        }
    }

    const GREY: [u8; 4] = [128, 128, 128, 255];

    /// A red checkerboard of 4 px squares: textured and saturated.
    fn checker(x: u32, y: u32) -> [u8; 4] {
        if (x / 4 + y / 4).is_multiple_of(2) {
            [230, 20, 20, 255]
        } else {
            [90, 0, 0, 255]
        }
    }

    /// Grey with the checkerboard in `[x0, x1) x [y0, y1)`.
    fn subject(w: u32, h: u32, (x0, x1): (u32, u32), (y0, y1): (u32, u32)) -> Pixels {
        image(w, h, false, |x, y| {
            if (x0..x1).contains(&x) && (y0..y1).contains(&y) {
                checker(x, y)
            } else {
                GREY
            }
        })
    }

    fn whole(img: &Pixels) -> Rect {
        Rect {
            x: 0.0,
            y: 0.0,
            width: f64::from(img.width),
            height: f64::from(img.height),
        }
    }

    /// A deterministic pseudo-random byte stream (xorshift).
    fn noise(seed: u32) -> impl FnMut() -> u8 {
        let mut s = seed.max(1);
        move || {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 24) as u8
        }
    }

    fn noise_image(w: u32, h: u32, alpha: bool, seed: u32) -> Pixels {
        let mut next = noise(seed);
        let buf = (0..w * h * if alpha { 4 } else { 3 })
            .map(|_| next())
            .collect();
        Pixels {
            buf,
            width: w,
            height: h,
            alpha,
        }
    }

    #[track_caller]
    fn assert_inside((x, y): (f64, f64), r: Rect, win: (f64, f64)) {
        assert!(x.is_finite() && y.is_finite(), "({x}, {y})");
        if win.0 < r.width {
            assert!(
                x >= r.x && x + win.0 <= r.x + r.width + 1e-9,
                "x {x} in {r:?} {win:?}"
            );
        }
        if win.1 < r.height {
            assert!(
                y >= r.y && y + win.1 <= r.y + r.height + 1e-9,
                "y {y} in {r:?} {win:?}"
            );
        }
    }

    #[test]
    fn flat_image_is_centred() {
        let img = image(400, 200, false, |_, _| GREY);
        let (x, y) = place(&img, whole(&img), (200.0, 200.0));
        assert!((x - 100.0).abs() <= 1.0, "x = {x}");
        assert_eq!(y, 0.0);
        // Flat but coloured, and flat along both axes.
        let img = image(400, 300, false, |_, _| [200, 30, 60, 255]);
        let (x, y) = place(&img, whole(&img), (100.0, 100.0));
        assert!(
            (x - 150.0).abs() <= 1.0 && (y - 100.0).abs() <= 1.0,
            "({x}, {y})"
        );
    }

    #[test]
    fn subject_near_the_right() {
        let img = subject(600, 200, (480, 560), (60, 140));
        let (x, y) = place(&img, whole(&img), (200.0, 200.0));
        assert!(x <= 480.0 && x + 200.0 >= 560.0, "x = {x}");
        assert_eq!(y, 0.0);
    }

    #[test]
    fn subject_near_the_left() {
        let img = subject(600, 200, (40, 120), (60, 140));
        let (x, _) = place(&img, whole(&img), (200.0, 200.0));
        assert!(x <= 40.0 && x + 200.0 >= 120.0, "x = {x}");
    }

    #[test]
    fn a_small_salient_spot_beats_a_wide_busy_area() {
        // Mild texture over the left two thirds (grass), a small saturated red/yellow subject
        // at the right; the window (a third of the width) could hold a lot of texture instead.
        let img = image(900, 300, false, |x, y| {
            if (780..840).contains(&x) && (120..180).contains(&y) {
                checker(x, y)
            } else if x < 600 && (x / 3 + y / 3).is_multiple_of(2) {
                [90, 140, 80, 255]
            } else {
                [80, 120, 70, 255]
            }
        });
        let (x, _) = place(&img, whole(&img), (300.0, 300.0));
        assert!(x <= 780.0 && x + 300.0 >= 840.0, "x = {x}");
    }

    #[test]
    fn subject_near_the_top() {
        let img = subject(200, 600, (60, 140), (30, 110));
        let (x, y) = place(&img, whole(&img), (200.0, 200.0));
        assert_eq!(x, 0.0);
        assert!(y <= 30.0 && y + 200.0 >= 110.0 && y < 100.0, "y = {y}");
    }

    #[test]
    fn subject_in_a_large_image() {
        // Downsampled map (2400 px > 256 cells) and sampled pixels.
        let img = subject(2400, 800, (1900, 2200), (300, 500));
        let (x, _) = place(&img, whole(&img), (800.0, 800.0));
        assert!(x <= 1900.0 && x + 800.0 >= 2200.0, "x = {x}");
    }

    #[test]
    fn subject_within_a_region() {
        // The region is a crop of the image; the subject lies inside it, off-centre.
        let img = subject(1000, 400, (620, 700), (100, 180));
        let region = Rect {
            x: 300.5,
            y: 50.0,
            width: 500.0,
            height: 300.0,
        };
        let (x, y) = place(&img, region, (200.0, 300.0));
        assert_inside((x, y), region, (200.0, 300.0));
        assert!(x <= 620.0 && x + 200.0 >= 700.0, "x = {x}");
        assert_eq!(y, 50.0);
    }

    #[test]
    fn both_axes_free() {
        let img = subject(600, 600, (450, 530), (40, 120));
        let (x, y) = place(&img, whole(&img), (200.0, 200.0));
        assert!(x <= 450.0 && x + 200.0 >= 530.0, "x = {x}");
        assert!(y <= 40.0 && y + 200.0 >= 120.0, "y = {y}");
    }

    #[test]
    fn transparent_noise_is_ignored() {
        let mut next = noise(7);
        let mut pixels = Vec::new();
        for y in 0..200u32 {
            for x in 0..600u32 {
                pixels.push(if x < 300 {
                    [next(), next(), next(), 0]
                } else if (440..520).contains(&x) && (60..140).contains(&y) {
                    checker(x, y)
                } else {
                    GREY
                });
            }
        }
        let build = |noise_alpha: u8| {
            image(600, 200, true, |x, y| {
                let mut p = pixels[(y * 600 + x) as usize];
                if x < 300 {
                    p[3] = noise_alpha;
                }
                p
            })
        };
        let img = build(0);
        let (x, _) = place(&img, whole(&img), (200.0, 200.0));
        assert!(x <= 440.0 && x + 200.0 >= 520.0, "x = {x}");
        // The same noise, opaque, wins: the test above is not passing by accident.
        let img = build(255);
        let (x, _) = place(&img, whole(&img), (200.0, 200.0));
        assert!(x < 300.0, "x = {x}");
    }

    #[test]
    fn degenerate_inputs() {
        let r = |x, y, width, height| Rect {
            x,
            y,
            width,
            height,
        };
        // Empty image: centred.
        let empty = image(0, 0, false, |_, _| GREY);
        assert_eq!(
            place(&empty, r(0.0, 0.0, 100.0, 100.0), (50.0, 50.0)),
            (25.0, 25.0)
        );
        assert_eq!(place(&empty, r(0.0, 0.0, 0.0, 0.0), (0.0, 0.0)), (0.0, 0.0));
        let img = subject(300, 300, (250, 290), (250, 290));
        // Window wider than the region: centred across, still placed down.
        let region = r(10.0, 20.0, 100.0, 280.0);
        let (x, y) = place(&img, region, (200.0, 50.0));
        assert_eq!(x, 10.0 + (100.0 - 200.0) / 2.0);
        assert_inside((x, y), region, (200.0, 50.0));
        // Window larger both ways: centred both ways.
        assert_eq!(
            place(&img, r(10.0, 20.0, 100.0, 100.0), (300.0, 200.0)),
            (-90.0, -30.0)
        );
        // Zero-width region: x stays on it.
        for region in [r(50.0, 0.0, 0.0, 300.0), r(50.5, 0.0, 0.0, 300.0)] {
            let (x, y) = place(&img, region, (0.0, 100.0));
            assert_eq!(x, region.x);
            assert_inside((x, y), region, (0.0, 100.0));
        }
        // Region wholly or partly outside the image.
        for region in [
            r(-500.0, -500.0, 100.0, 100.0),
            r(250.0, 250.0, 400.0, 100.0),
        ] {
            let p = place(&img, region, (50.0, 50.0));
            assert_inside(p, region, (50.0, 50.0));
        }
        // Non-finite and negative numbers.
        for (region, win) in [
            (r(f64::NAN, 0.0, 100.0, 100.0), (50.0, 50.0)),
            (r(0.0, 0.0, f64::INFINITY, 100.0), (50.0, 50.0)),
            (r(0.0, 0.0, 100.0, 100.0), (f64::NAN, -5.0)),
            (r(0.0, 0.0, -100.0, 100.0), (50.0, f64::NEG_INFINITY)),
            (r(1e300, 1e300, 1e300, 1e300), (1.0, 1.0)),
        ] {
            let (x, y) = place(&img, region, win);
            assert!(
                x.is_finite() && y.is_finite(),
                "{region:?} {win:?}: ({x}, {y})"
            );
        }
        // A buffer shorter than its dimensions: centred, no panic.
        let short = Pixels {
            buf: vec![0; 10],
            width: 300,
            height: 300,
            alpha: true,
        };
        assert_eq!(
            place(&short, r(0.0, 0.0, 300.0, 300.0), (100.0, 300.0)),
            (100.0, 0.0)
        );
        // One-pixel images and regions.
        let dot = image(1, 1, true, |_, _| [255, 0, 0, 255]);
        let p = place(&dot, r(0.0, 0.0, 1.0, 1.0), (0.5, 0.5));
        assert_inside(p, r(0.0, 0.0, 1.0, 1.0), (0.5, 0.5));
    }

    #[test]
    fn deterministic() {
        let img = noise_image(640, 480, true, 3);
        let region = whole(&img);
        for win in [(480.0, 480.0), (640.0, 200.0), (123.4, 56.7)] {
            assert_eq!(place(&img, region, win), place(&img, region, win));
        }
    }

    #[test]
    fn window_always_inside_region() {
        let mut seed = 1;
        for (w, h) in [
            (1, 1),
            (2, 3),
            (17, 5),
            (257, 255),
            (300, 1),
            (1, 300),
            (999, 333),
        ] {
            for alpha in [false, true] {
                seed += 1;
                let img = noise_image(w, h, alpha, seed);
                let (fw, fh) = (f64::from(w), f64::from(h));
                let regions = [
                    whole(&img),
                    Rect {
                        x: fw * 0.25,
                        y: fh * 0.1,
                        width: fw * 0.5,
                        height: fh * 0.8,
                    },
                    Rect {
                        x: 0.3,
                        y: 0.7,
                        width: (fw - 0.9).max(0.0),
                        height: (fh - 1.1).max(0.0),
                    },
                ];
                for region in regions {
                    for (a, b) in [(1.0, 1.0), (0.5, 1.0), (1.0, 0.37), (0.1, 0.9), (0.0, 0.0)] {
                        let win = (region.width * a, region.height * b);
                        let p = place(&img, region, win);
                        assert_inside(p, region, win);
                    }
                }
            }
        }
    }

    /// Not an assertion on speed: prints the cost on a 2000 x 1500 photo-sized image
    /// (`cargo test --release --lib smartcrop -- --nocapture`).
    #[test]
    fn timing_2000x1500() {
        let mut next = noise(11);
        let img = image(2000, 1500, false, |x, y| {
            if (1500..1700).contains(&x) && (300..500).contains(&y) {
                checker(x, y)
            } else {
                let v = ((x + y) / 16) as u8 / 2 + next() / 16;
                [v, v, v.saturating_add(20), 255]
            }
        });
        for (what, win) in [
            ("fill 1:1, x free", (1500.0, 1500.0)),
            ("fill 16:9, y free", (2000.0, 1125.0)),
            ("both free", (800.0, 600.0)),
        ] {
            let start = std::time::Instant::now();
            let runs = 10;
            let mut p = (0.0, 0.0);
            for _ in 0..runs {
                p = place(&img, whole(&img), win);
            }
            let each = start.elapsed() / runs;
            println!("smartcrop place 2000x1500 RGB, {what}: {each:?} per call -> {p:?}");
            // The subject (1500..1700 x 300..500) is inside the chosen window.
            assert!(p.0 <= 1500.0 && p.0 + win.0 >= 1700.0, "{what}: {p:?}");
            assert!(p.1 <= 300.0 && p.1 + win.1 >= 500.0, "{what}: {p:?}");
        }
    }
}
