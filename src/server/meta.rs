//! `GET /meta/<options>/<source>`: JSON about the rendition `/img/<options>/<source>` would
//! answer, for pages that show a placeholder before the image loads:
//!
//! ```json
//! {"width":300,"height":188,"format":"jpeg","bytes":14080,"has_alpha":false,"frames":1,
//!  "dominant_color":"#4a6b2f","thumbhash":"3OcRJYB4d3h/iIeHeEh3eIhw+j3A"}
//! ```
//!
//! `thumbhash` is standard base64 of the ThumbHash bytes (decode with any ThumbHash library).
//! Cached like renditions, under a key derived from the rendition's.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::pipeline::{Rendered, Summary};

pub const CONTENT_TYPE: &str = "application/json";

#[derive(serde::Serialize)]
struct Meta<'a> {
    width: u32,
    height: u32,
    format: &'a str,
    bytes: usize,
    has_alpha: bool,
    frames: u32,
    dominant_color: String,
    thumbhash: String,
}

pub fn json(r: &Rendered, s: &Summary) -> Vec<u8> {
    let [red, green, blue] = s.dominant;
    let meta = Meta {
        width: r.width,
        height: r.height,
        format: r.format.name(),
        bytes: r.bytes.len(),
        has_alpha: r.alpha,
        frames: r.frames,
        dominant_color: format!("#{red:02x}{green:02x}{blue:02x}"),
        thumbhash: STANDARD.encode(&s.thumbhash),
    };
    // Serialising this struct of numbers and strings cannot fail.
    serde_json::to_vec(&meta).unwrap_or_default()
}
