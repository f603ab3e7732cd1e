//! SVG input, rendered by resvg (usvg parses, tiny-skia rasterises; all pure Rust).
//!
//! A vector codec: `probe` reports the intrinsic size (width/height/viewBox), `decode` renders
//! at whatever scale the pipeline asks for, straight to the output size. Nothing outside the
//! document is ever read: `<image>` (files, URLs and `data:` rasters alike), external `<use>`,
//! CSS `@import` and external XML entities all resolve to nothing, and no font is loaded, so
//! `<text>` is dropped (resvg's `text` feature is off: no font database at all). The cost of a
//! document is bounded before rendering — bytes, entity expansion, rendered nodes, covered
//! area, layer memory — and the render runs in horizontal strips with the deadline checked
//! between them, because resvg cannot be interrupted inside a render.
//!
//! `sanitize` serves `output.svg_passthrough`: it re-serialises the parsed tree with usvg's
//! writer, so only what the renderer understood (paths, paint servers, clips, masks, filters)
//! comes out; scripts, event handlers, `foreignObject`, links and text cannot.
//!
//! No metadata: SVG has no EXIF, and colours are sRGB by definition (ICC `color-profile` is
//! ignored by usvg).

use std::cmp::Ordering;
use std::collections::HashMap;

use resvg::tiny_skia::{PixmapMut, Transform};
use resvg::usvg::{self, roxmltree};

use super::super::{alloc_zeroed, Limits, PipelineError, Pixels};
use super::{Codec, DecodeAt, Header, Metadata};
use crate::format::Format;

pub(crate) const CODEC: Codec = Codec {
    format: Format::Svg,
    sniff,
    probe,
    decode,
    metadata,
    vector: true,
    // The RGBA render (per rendered pixel), and resvg's layers for a strip beside it.
    decode_bytes_per_pixel: 8,
};

/// Largest SVG document accepted, in bytes (imgproxy's default). Should become
/// `limits.max_svg_bytes` in the config.
pub(crate) const MAX_SVG_BYTES: usize = 10 << 20;
/// How much of the body `sniff` looks at for the root `<svg` element.
const SNIFF_BYTES: usize = 4096;
/// Most XML nodes roxmltree builds (elements, text, attributes-as-nodes excluded).
const MAX_XML_NODES: u32 = 1_000_000;
/// Most nodes in the rendered tree, after every `<use>` is expanded and counting each clip
/// path, mask and pattern once per use. Logos have hundreds; detailed maps tens of thousands.
const MAX_RENDER_NODES: u64 = 100_000;
/// Largest intrinsic side reported by `probe`; larger documents are scaled down to fit
/// (keeping their aspect ratio): a vector has no pixels to lose.
const MAX_SIDE: f64 = 16_384.0;
/// Most work in a render, in painted pixels (each node's clipped area at the output size, layers
/// and filters weighted): resvg manages about 25 million a second on one core, so this is about
/// the default 10 s job budget; what passes is still stopped by the deadline.
const MAX_WORK: f64 = 2.5e8;
/// Work per layer pixel of one filter primitive: a few passes (blurs are 3 box blurs), over a
/// layer each strip redraws up to 5 strips tall.
const FILTER_WORK: f64 = 20.0;
/// Work per pixel of an isolated group's layer (opacity, clip, mask, blend), up to 5 strips tall.
const LAYER_WORK: f64 = 10.0;
/// Fewest rows per strip. resvg lets a filter's layer reach two strip heights beyond the
/// strip, so blurs up to twice this wide join without seams (cheap documents get far taller
/// strips).
const MIN_STRIP_ROWS: u32 = 16;
/// Work per strip aimed for, between two deadline checks: about 50 ms.
const STRIP_WORK: f64 = 2e6;
/// Most work in one strip (about 200 ms), so the deadline is never overrun by much more.
const MAX_STRIP_WORK: f64 = 8e6;
/// Work of one node in one strip, in painted-pixel equivalents (transforming and clipping it).
const NODE_WORK: f64 = 50.0;
/// Work per pixel of a pattern tile, which resvg allocates, clears and draws for every path it
/// paints, in every strip.
const TILE_WORK: f64 = 2.0;
/// Largest pattern tile resvg may allocate, in bytes (also at most a quarter of
/// `max_decode_bytes`): a huge `patternTransform` would otherwise ask for a pixmap of
/// gigabytes and abort the process when the allocation fails.
const MAX_TILE_BYTES: u64 = 64 << 20;
/// Most CSS in the `<style>` elements of a document, in bytes.
const MAX_CSS_BYTES: usize = 64 << 10;
/// Most compound selectors in one CSS selector (`a b > c` has 3): simplecss matches
/// descendant and sibling combinators by backtracking, exponential in their number.
const MAX_COMPOUNDS: usize = 4;
/// Most selector x element pairs usvg tests (it matches every rule against every element).
const MAX_SELECTOR_TESTS: u64 = 1_000_000;
/// Most backtracking steps the selectors can take over the document's ancestors and siblings
/// (an upper bound, counted per selector and element).
const MAX_SELECTOR_STEPS: f64 = 2e7;

/// True when, after an optional BOM, whitespace, `<?xml …?>`, comments and a `<!DOCTYPE svg …>`,
/// the first element of the first 4 KiB is `<svg`. An HTML page never starts that way.
pub(crate) fn sniff(bytes: &[u8]) -> bool {
    let head = bytes.get(..SNIFF_BYTES).unwrap_or(bytes);
    let mut s = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    loop {
        s = s.trim_ascii_start();
        if let Some(rest) = s.strip_prefix(b"<?") {
            // The XML declaration or another processing instruction.
            let Some(end) = find(rest, b"?>") else {
                return false;
            };
            s = &rest[end + 2..];
        } else if let Some(rest) = s.strip_prefix(b"<!--") {
            let Some(end) = find(rest, b"-->") else {
                return false;
            };
            s = &rest[end + 3..];
        } else if s.len() >= 9 && s[..9].eq_ignore_ascii_case(b"<!DOCTYPE") {
            let rest = s[9..].trim_ascii_start();
            if rest.len() < 4 || !rest[..3].eq_ignore_ascii_case(b"svg") {
                return false;
            }
            if !matches!(rest[3], b' ' | b'\t' | b'\r' | b'\n' | b'>' | b'[') {
                return false;
            }
            // Skip an internal subset `[ … ]`, then the closing `>`.
            let after = match (find(rest, b"["), find(rest, b">")) {
                (Some(open), Some(gt)) if open < gt => {
                    let Some(close) = find(&rest[open..], b"]") else {
                        return false;
                    };
                    &rest[open + close..]
                }
                _ => rest,
            };
            let Some(gt) = find(after, b">") else {
                return false;
            };
            s = &after[gt + 1..];
        } else if let Some(rest) = s.strip_prefix(b"<svg") {
            return rest
                .first()
                .is_none_or(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n' | b'>' | b'/'));
        } else {
            return false;
        }
    }
}

/// The intrinsic size, scaled down to fit [`MAX_SIDE`] and `max_source_pixels`; parses the
/// document (bounded as for `decode`) but renders nothing.
pub(crate) fn probe(bytes: &[u8], limits: &Limits) -> Result<Header, PipelineError> {
    let tree = parse(bytes, limits)?;
    let (width, height) = intrinsic_size(&tree, limits);
    Ok(Header {
        width,
        height,
        orientation: 1,
        frames: 1,
        ..Header::default()
    })
}

/// Renders at `ceil(header.width * at.scale) x ceil(header.height * at.scale)` as RGBA with
/// straight (not premultiplied) alpha, in sRGB.
pub(crate) fn decode(
    bytes: &[u8],
    header: &Header,
    at: &DecodeAt,
    limits: &Limits,
) -> Result<Pixels, PipelineError> {
    let tree = parse(bytes, limits)?;
    limits.check_deadline()?;
    let (width, height) = output_size(header, at.scale, limits)?;
    let size = tree.size();
    let sx = width as f32 / size.width();
    let sy = height as f32 / size.height();
    let strip = strip_rows(&tree, sx, sy, width, height, limits)?;

    let mut buf = alloc_zeroed(width as usize * height as usize * 4).ok_or(
        PipelineError::DecodeTooLarge {
            width,
            height,
            limit: limits.max_decode_bytes,
        },
    )?;
    let row_bytes = width as usize * 4;
    let scale = Transform::from_scale(sx, sy);
    // Each strip is drawn straight into its rows of the output (zeroed: transparent black).
    for (index, rows) in buf.chunks_mut(row_bytes * strip as usize).enumerate() {
        limits.check_deadline()?;
        let count = (rows.len() / row_bytes) as u32;
        let mut pixmap = PixmapMut::from_bytes(rows, width, count)
            .ok_or_else(|| PipelineError::Internal("SVG strip pixmap".into()))?;
        let top = index as f32 * strip as f32;
        resvg::render(&tree, scale.post_translate(0.0, -top), &mut pixmap);
        demultiply(rows);
    }
    limits.check_deadline()?;
    Ok(Pixels {
        buf,
        width,
        height,
        alpha: true,
    })
}

/// tiny-skia's premultiplied RGBA to straight alpha, in place (its own rounding).
fn demultiply(rgba: &mut [u8]) {
    for px in rgba.chunks_exact_mut(4) {
        let a = px[3];
        if a != 0 && a != 255 {
            let a = f32::from(a) / 255.0;
            for c in &mut px[..3] {
                *c = (f32::from(*c) / a + 0.5) as u8;
            }
        }
    }
}

/// SVG carries no EXIF, and its colours are sRGB.
pub(crate) fn metadata(_bytes: &[u8]) -> Metadata {
    Metadata::default()
}

/// The document re-serialised by usvg's writer from the parsed tree (nothing resolved from
/// outside it), for `output.svg_passthrough`: only rendering elements survive.
pub(crate) fn sanitize(bytes: &[u8], limits: &Limits) -> Result<Vec<u8>, PipelineError> {
    let tree = parse(bytes, limits)?;
    limits.check_deadline()?;
    let out = tree.to_string(&usvg::WriteOptions::default());
    // `<use>` is written expanded: bound what the node cap lets through.
    if out.len() > MAX_SVG_BYTES {
        return Err(too_big());
    }
    Ok(out.into_bytes())
}

/// Parses with every external reference resolving to nothing, and refuses documents whose
/// size, entity expansion or rendered node count is over its bound.
fn parse(bytes: &[u8], limits: &Limits) -> Result<usvg::Tree, PipelineError> {
    if bytes.len() > MAX_SVG_BYTES {
        return Err(too_big());
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| PipelineError::Corrupt("SVG is not UTF-8".into()))?;
    check_entities(text)?;
    let xml = roxmltree::ParsingOptions {
        // Illustrator writes a DOCTYPE with internal entities; external ones are never
        // loaded (roxmltree has no resolver unless given one).
        allow_dtd: true,
        nodes_limit: MAX_XML_NODES,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, xml)
        .map_err(|e| PipelineError::Corrupt(format!("SVG: {e}")))?;
    // usvg would expand a `<use>` bomb up to its own cap of a million nodes (~70 MB) first.
    if expanded_elements(&doc) > MAX_RENDER_NODES {
        return Err(too_complex(0, 0, limits));
    }
    // usvg matches every `<style>` rule against every element, inside a parse that has no
    // deadline.
    check_stylesheets(&doc)?;
    let tree = usvg::Tree::from_xmltree(&doc, &options()).map_err(|e| match e {
        usvg::Error::ElementsLimitReached
        | usvg::Error::ParsingFailed(roxmltree::Error::NodesLimitReached) => {
            too_complex(0, 0, limits)
        }
        e => PipelineError::Corrupt(format!("SVG: {e}")),
    })?;
    if count_nodes(tree.root(), 0) > MAX_RENDER_NODES {
        return Err(too_complex(0, 0, limits));
    }
    Ok(tree)
}

/// usvg options that load nothing: no resources directory, every `<image>` href (paths, URLs,
/// `data:` rasters, nested SVG) resolves to nothing, no fonts.
fn options() -> usvg::Options<'static> {
    usvg::Options {
        resources_dir: None,
        image_href_resolver: usvg::ImageHrefResolver {
            resolve_data: Box::new(|_, _, _| None),
            resolve_string: Box::new(|_, _| None),
        },
        ..usvg::Options::default()
    }
}

/// Refuses internal DTD entities that could expand past [`MAX_SVG_BYTES`]: nested references
/// and parameter entities are refused, and references × subset size must fit. (roxmltree
/// caps nesting at 10 levels of 255 references, which still multiplies a large entity.)
fn check_entities(text: &str) -> Result<(), PipelineError> {
    let Some(decl) = text.find("<!ENTITY") else {
        return Ok(());
    };
    let refused = || PipelineError::Unsupported("SVG with nested or large XML entities".into());
    let open = text[..decl].rfind('[').ok_or_else(refused)?;
    let close = open + text[open..].find("]>").ok_or_else(refused)?;
    let subset = &text[open..close];
    let body = &text[close..];
    let nested = subset
        .match_indices('&')
        .any(|(i, _)| !subset[i..].starts_with("&#"));
    if nested || subset.contains("<!ENTITY %") || body.contains("<!ENTITY") {
        return Err(refused());
    }
    let references = body.matches('&').count();
    if references.saturating_mul(subset.len()) > MAX_SVG_BYTES {
        return Err(refused());
    }
    Ok(())
}

/// Refuses `<style>` sheets whose selector matching would be slow: more than
/// [`MAX_CSS_BYTES`] of CSS, a selector of more than [`MAX_COMPOUNDS`] compounds, more than
/// [`MAX_SELECTOR_TESTS`] selector x element tests, or more than [`MAX_SELECTOR_STEPS`]
/// backtracking steps.
fn check_stylesheets(doc: &roxmltree::Document) -> Result<(), PipelineError> {
    let refused = || PipelineError::Unsupported("SVG stylesheet too complex".into());
    let mut css = String::new();
    for style in doc.descendants().filter(|n| n.has_tag_name("style")) {
        for text in style.descendants().filter_map(|n| n.text()) {
            if css.len() + text.len() > MAX_CSS_BYTES {
                return Err(refused());
            }
            css.push_str(text);
            css.push('\n');
        }
    }
    if css.is_empty() {
        return Ok(());
    }
    // How many selectors have 1, 2, 3, 4 compounds.
    let mut by_compounds = [0u64; MAX_COMPOUNDS];
    for selector in selectors(&strip_comments(&css)) {
        match compounds(selector) {
            0 => {}
            n if n > MAX_COMPOUNDS => return Err(refused()),
            n => by_compounds[n - 1] += 1,
        }
    }
    // Each element's fan-out: the ancestors a descendant combinator searches and the earlier
    // siblings a `~` searches. A selector of n compounds backtracks through at most
    // C(fan-out, n - 1) combinations per element.
    // Counted from the parent's and the previous sibling's (document order visits them
    // first), so a million siblings cost a million steps.
    let mut fan_outs = vec![(0u32, 0u32); doc.descendants().count()];
    let mut steps = [0f64; MAX_COMPOUNDS];
    let mut elements = 0u64;
    for node in doc.descendants().filter(|n| n.is_element()) {
        elements += 1;
        let get =
            |n: Option<roxmltree::Node>| n.and_then(|n| fan_outs.get(n.id().get_usize()).copied());
        let depth = get(node.parent()).map_or(0, |(depth, _)| depth + 1);
        let index = get(node.prev_sibling_element()).map_or(0, |(_, index)| index + 1);
        if let Some(slot) = fan_outs.get_mut(node.id().get_usize()) {
            *slot = (depth, index);
        }
        let fan_out = f64::from(depth) + f64::from(index);
        let mut choose = 1.0;
        for (k, step) in steps.iter_mut().enumerate() {
            *step += choose;
            choose = choose * (fan_out - k as f64).max(0.0) / (k + 1) as f64;
        }
    }
    let selectors: u64 = by_compounds.iter().sum();
    let total: f64 = by_compounds
        .iter()
        .zip(steps)
        .map(|(&count, step)| count as f64 * step)
        .sum();
    if selectors.saturating_mul(elements) > MAX_SELECTOR_TESTS || total > MAX_SELECTOR_STEPS {
        return Err(refused());
    }
    Ok(())
}

/// The CSS without its `/* … */` comments (an unclosed one runs to the end).
fn strip_comments(css: &str) -> String {
    let mut out = String::with_capacity(css.len());
    let mut rest = css;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        out.push(' ');
        rest = match rest[start + 2..].find("*/") {
            Some(end) => &rest[start + 2 + end + 2..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

/// Every selector of a stylesheet: the text before each `{` (after the last `}`, `{` or `;`),
/// split at commas. At-rule preludes (`@media screen`) count as selectors too.
fn selectors(css: &str) -> impl Iterator<Item = &str> {
    css.split_inclusive(['{', '}'])
        .filter_map(|part| {
            let prelude = part.strip_suffix('{')?;
            prelude.rsplit(';').next()
        })
        .flat_map(|p| p.split(','))
}

/// Compound selectors in a selector: runs of text between combinators (whitespace, `>`, `+`,
/// `~`), outside brackets, parentheses and quotes.
fn compounds(selector: &str) -> usize {
    let mut count = 0;
    let mut depth = 0u32;
    let mut quote = None;
    let mut in_compound = false;
    for c in selector.chars() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '[' | '(' => depth += 1,
            ']' | ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        let combinator = depth == 0 && (c.is_whitespace() || matches!(c, '>' | '+' | '~'));
        if combinator {
            in_compound = false;
        } else if !in_compound {
            in_compound = true;
            count += 1;
        }
    }
    count
}

/// Elements of the document once every `<use>` is replaced by what it references, each
/// element's expanded size computed once; anything deeper than usvg's own nesting limit of
/// 1024 counts as over the cap. A `<use>` that references its own ancestor counts 0 (usvg
/// skips it).
fn expanded_elements(doc: &roxmltree::Document) -> u64 {
    let ids: HashMap<&str, roxmltree::NodeId> = doc
        .descendants()
        .filter_map(|n| Some((n.attribute("id")?, n.id())))
        .collect();
    let mut sizes = HashMap::new();
    expanded(doc.root_element(), &ids, &mut sizes, 0)
}

fn expanded(
    node: roxmltree::Node,
    ids: &HashMap<&str, roxmltree::NodeId>,
    sizes: &mut HashMap<roxmltree::NodeId, u64>,
    depth: u32,
) -> u64 {
    const OVER: u64 = MAX_RENDER_NODES + 1;
    if depth > 1024 {
        return OVER;
    }
    if let Some(&size) = sizes.get(&node.id()) {
        return size;
    }
    sizes.insert(node.id(), 0);
    let mut size = 1;
    for child in node.children().filter(|c| c.is_element()) {
        size = (size + expanded(child, ids, sizes, depth + 1)).min(OVER);
    }
    if node.has_tag_name("use") {
        let href = node
            .attribute("href")
            .or_else(|| node.attribute(("http://www.w3.org/1999/xlink", "href")));
        let target = href
            .and_then(|h| h.strip_prefix('#'))
            .and_then(|id| ids.get(id));
        if let Some(target) = target.and_then(|&id| node.document().get_node(id)) {
            size = (size + expanded(target, ids, sizes, depth + 1)).min(OVER);
        }
    }
    sizes.insert(node.id(), size);
    size
}

/// Nodes of `group`, its descendants and the clip paths, masks, patterns and filters they
/// use, counted once per use; stops counting past [`MAX_RENDER_NODES`].
fn count_nodes(group: &usvg::Group, mut count: u64) -> u64 {
    for node in group.children() {
        if count > MAX_RENDER_NODES {
            return count;
        }
        count += 1;
        if let usvg::Node::Group(g) = node {
            count = count_nodes(g, count);
        }
        node.subroots(|root| count = count_nodes(root, count));
    }
    count
}

/// The rendering cost of a tree at a scale, in painted pixels, and the deepest nesting of
/// layers (isolated groups, clip paths, masks, patterns) resvg allocates at once.
#[derive(Default)]
struct Cost {
    nodes: f64,
    pixels: f64,
    layers: u32,
}

fn measure(group: &usvg::Group, view: usvg::Rect, sx: f64, sy: f64, depth: u32, cost: &mut Cost) {
    cost.layers = cost.layers.max(depth);
    let area = |r: usvg::Rect| {
        r.intersect(&view)
            .map_or(0.0, |r| r.width() as f64 * sx * r.height() as f64 * sy)
    };
    for node in group.children() {
        cost.nodes += 1.0;
        match node {
            usvg::Node::Group(g) => {
                // Each strip redraws a filter's layer up to 5 strips tall (resvg's clip).
                let bbox = g.abs_layer_bounding_box().to_rect();
                let layer = area(bbox);
                if layer > 0.0 {
                    let (gx, gy) = g.abs_transform().get_scale();
                    let scale = (f64::from(gx) * sx, f64::from(gy) * sy);
                    let size = (f64::from(bbox.width()) * sx, f64::from(bbox.height()) * sy);
                    let weight: f64 = g
                        .filters()
                        .iter()
                        .flat_map(|f| f.primitives())
                        .map(|p| primitive_weight(p.kind(), scale, size))
                        .sum();
                    cost.pixels += layer * FILTER_WORK * weight;
                }
                if g.should_isolate() {
                    // A layer allocated, drawn into and composited back.
                    cost.pixels += area(g.abs_layer_bounding_box().to_rect()) * LAYER_WORK;
                }
                let depth = depth + u32::from(g.should_isolate());
                measure(g, view, sx, sy, depth, cost);
            }
            usvg::Node::Path(p) => cost.pixels += area(p.abs_stroke_bounding_box()),
            usvg::Node::Image(_) | usvg::Node::Text(_) => {}
        }
        node.subroots(|root| measure(root, view, sx, sy, depth + 1, cost));
    }
}

/// How many times the work of an ordinary filter primitive (a blur: a few passes) one primitive
/// costs per pixel, at a scale (output pixels per user unit) on a layer `size` pixels large:
/// feMorphology looks at (2rx+1)(2ry+1) pixels (its radius clamped to the layer),
/// feTurbulence sums `numOctaves` octaves of 4 noise channels (usvg does not clamp it),
/// feConvolveMatrix multiplies `orderX x orderY` pixels.
fn primitive_weight(kind: &usvg::filter::Kind, scale: (f64, f64), size: (f64, f64)) -> f64 {
    use usvg::filter::Kind;
    let reads = match kind {
        Kind::Morphology(m) => {
            let radius = |r: f32, s: f64, side: f64| (f64::from(r) * s).round().clamp(0.0, side);
            let rx = radius(m.radius_x().get(), scale.0, size.0);
            let ry = radius(m.radius_y().get(), scale.1, size.1);
            (2.0 * rx + 1.0) * (2.0 * ry + 1.0)
        }
        Kind::Turbulence(t) => 4.0 * f64::from(t.num_octaves()),
        Kind::ConvolveMatrix(c) => f64::from(c.matrix().columns()) * f64::from(c.matrix().rows()),
        _ => 0.0,
    };
    // A blur reads about 4 pixels per output pixel per pass.
    (reads / 4.0).max(1.0)
}

/// Adds the pixels of every pattern tile resvg allocates when drawing `group` with `transform`
/// (once per painted path, as resvg does: the pattern rectangle times the scale of the
/// transform and `patternTransform`, rounded); refuses a tile over [`MAX_TILE_BYTES`] or a
/// quarter of `max_decode_bytes`.
fn pattern_tiles(
    group: &usvg::Group,
    transform: Transform,
    limits: &Limits,
    tiles: &mut f64,
) -> Result<(), PipelineError> {
    let cap = MAX_TILE_BYTES.min(limits.max_decode_bytes / 4) as f64;
    for node in group.children() {
        match node {
            usvg::Node::Group(g) => {
                let transform = transform.pre_concat(g.transform());
                pattern_tiles(g, transform, limits, tiles)?;
                let mut result = Ok(());
                node.subroots(|root| {
                    if result.is_ok() {
                        result = pattern_tiles(root, transform, limits, tiles);
                    }
                });
                result?;
            }
            usvg::Node::Path(p) => {
                let paints = [p.fill().map(|f| f.paint()), p.stroke().map(|s| s.paint())];
                for paint in paints.into_iter().flatten() {
                    let usvg::Paint::Pattern(pattern) = paint else {
                        continue;
                    };
                    let (px, py) = transform.pre_concat(pattern.transform()).get_scale();
                    let rect = pattern.rect();
                    let w = f64::from((rect.width() * px).round());
                    let h = f64::from((rect.height() * py).round());
                    // NaN and infinite scales fail this too.
                    let fits = (w * h * 4.0).partial_cmp(&cap);
                    if !matches!(fits, Some(Ordering::Less | Ordering::Equal)) {
                        return Err(PipelineError::DecodeTooLarge {
                            width: w.clamp(0.0, f64::from(u32::MAX)) as u32,
                            height: h.clamp(0.0, f64::from(u32::MAX)) as u32,
                            limit: limits.max_decode_bytes,
                        });
                    }
                    *tiles += w * h;
                    pattern_tiles(pattern.root(), Transform::from_scale(px, py), limits, tiles)?;
                }
            }
            usvg::Node::Image(_) | usvg::Node::Text(_) => {}
        }
    }
    Ok(())
}

/// Rows per strip: as many as fit [`STRIP_WORK`] (so the deadline is checked often enough),
/// at least [`MIN_STRIP_ROWS`], and fewer when nested layers (each up to 5 x 5 strips, as
/// resvg clips them) would pass `max_decode_bytes`. Refuses a render whose whole work would
/// pass [`MAX_WORK`], or one strip's [`MAX_STRIP_WORK`].
fn strip_rows(
    tree: &usvg::Tree,
    sx: f32,
    sy: f32,
    width: u32,
    height: u32,
    limits: &Limits,
) -> Result<u32, PipelineError> {
    let size = tree.size();
    let view = usvg::Rect::from_xywh(0.0, 0.0, size.width(), size.height())
        .ok_or_else(|| PipelineError::Corrupt("SVG has no size".into()))?;
    let mut cost = Cost::default();
    measure(tree.root(), view, sx.into(), sy.into(), 1, &mut cost);
    let mut tiles = 0.0;
    pattern_tiles(
        tree.root(),
        Transform::from_scale(sx, sy),
        limits,
        &mut tiles,
    )?;
    let per_row = cost.pixels / f64::from(height);
    // Every node is transformed and clipped again in each strip, every pattern tile redrawn.
    let per_strip = cost.nodes * NODE_WORK + tiles * TILE_WORK;
    let by_work = ((STRIP_WORK - per_strip).max(0.0) / per_row.max(1.0)).max(MIN_STRIP_ROWS.into());
    let layer_row_bytes = 25 * u64::from(width) * 4 * u64::from(cost.layers.max(1));
    let by_memory = limits.max_decode_bytes / layer_row_bytes.max(1);
    if by_memory < u64::from(MIN_STRIP_ROWS) {
        return Err(PipelineError::DecodeTooLarge {
            width,
            height,
            limit: limits.max_decode_bytes,
        });
    }
    let rows = (by_work as u64).min(by_memory).min(height.into()).max(1) as u32;
    let strips = f64::from(height.div_ceil(rows));
    if cost.pixels + per_strip * strips > MAX_WORK
        || per_row * f64::from(rows) + per_strip > MAX_STRIP_WORK
    {
        return Err(too_complex(width, height, limits));
    }
    Ok(rows)
}

/// The intrinsic size rounded up, at least 1x1, scaled down to fit [`MAX_SIDE`] per side and
/// `max_source_pixels` in all.
fn intrinsic_size(tree: &usvg::Tree, limits: &Limits) -> (u32, u32) {
    let (w, h) = (
        f64::from(tree.size().width()),
        f64::from(tree.size().height()),
    );
    let by_side = MAX_SIDE / w.max(h);
    let by_area = (limits.max_source_pixels as f64 / (w * h)).sqrt();
    let fit = by_side.min(by_area).min(1.0);
    let side = |v: f64| ((v * fit).ceil() as u32).clamp(1, MAX_SIDE as u32);
    let (mut width, mut height) = (side(w), side(h));
    // Rounding up may step just over the pixel limit: take a pixel off the longer side.
    while u64::from(width) * u64::from(height) > limits.max_source_pixels.max(1) {
        if width >= height && width > 1 {
            width -= 1;
        } else if height > 1 {
            height -= 1;
        } else {
            break;
        }
    }
    (width, height)
}

/// `ceil(header size * scale)`, refused over `max_source_pixels` or `max_decode_bytes`.
fn output_size(header: &Header, scale: f64, limits: &Limits) -> Result<(u32, u32), PipelineError> {
    let scale = if scale.is_finite() && scale > 0.0 {
        scale
    } else {
        1.0
    };
    // Rounded up, but 120 x (2000 / 120) is 2000, not 2001.
    let up = |v: f64| {
        if (v - v.round()).abs() < 1e-6 {
            v.round()
        } else {
            v.ceil()
        }
    };
    let w = up(f64::from(header.width) * scale).max(1.0);
    let h = up(f64::from(header.height) * scale).max(1.0);
    let (width, height) = (w.min(u32::MAX as f64) as u32, h.min(u32::MAX as f64) as u32);
    if w * h > limits.max_source_pixels as f64 {
        return Err(PipelineError::SourceTooLarge {
            width,
            height,
            limit: limits.max_source_pixels,
        });
    }
    if w * h * 4.0 > limits.max_decode_bytes as f64 {
        return Err(PipelineError::DecodeTooLarge {
            width,
            height,
            limit: limits.max_decode_bytes,
        });
    }
    Ok((width, height))
}

fn too_big() -> PipelineError {
    PipelineError::MetadataTooLarge {
        what: "SVG document",
        limit: MAX_SVG_BYTES as u64,
    }
}

/// A document whose rendering would cost too much (HTTP 413, as for a too-large decode).
fn too_complex(width: u32, height: u32, limits: &Limits) -> PipelineError {
    PipelineError::DecodeTooLarge {
        width,
        height,
        limit: limits.max_decode_bytes,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests;
