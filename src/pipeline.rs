//! The image pipeline: sniff -> probe header -> plan -> decode (shrink-on-load) -> orient ->
//! crop/resize -> pad/flatten -> encode. Synchronous, pure functions over bytes; the server runs
//! [`render`] on its bounded worker pool. No async, no HTTP types, no I/O.

use std::time::Duration;

use crate::format::Format;
use crate::options::Transform;

/// Resource limits, checked before any large allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest source width x height (read from the header, before decoding).
    pub max_source_pixels: u64,
    /// Largest output canvas width x height.
    pub max_output_pixels: u64,
    /// Largest single allocation a decoder may make, in bytes.
    pub max_decode_bytes: u64,
}

/// What the client's `Accept` header allows, for `f_auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Accept {
    pub webp: bool,
}

/// One render job.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub transform: &'a Transform,
    pub accept: Accept,
    /// Quality used when the transform has no `q_`.
    pub default_quality: u8,
}

/// Time spent in each stage, for `Server-Timing`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    pub decode: Duration,
    pub resize: Duration,
    pub encode: Duration,
}

/// An encoded output image.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub bytes: Vec<u8>,
    pub format: Format,
    pub width: u32,
    pub height: u32,
    pub timings: Timings,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    /// Not an image format we read (HTML, SVG, TIFF, random bytes, empty body). HTTP 415.
    #[error("unsupported image format: {0}")]
    Unsupported(String),
    /// Source dimensions over `max_source_pixels`. HTTP 413.
    #[error("source image {width}x{height} is larger than the limit of {limit} pixels")]
    SourceTooLarge { width: u32, height: u32, limit: u64 },
    /// Output canvas over `max_output_pixels`. HTTP 413.
    #[error("output {width}x{height} is larger than the limit of {limit} pixels")]
    OutputTooLarge { width: u32, height: u32, limit: u64 },
    /// Truncated or corrupt image data. HTTP 422.
    #[error("corrupt image: {0}")]
    Corrupt(String),
    /// A bug or an encoder failure on valid pixels. HTTP 500.
    #[error("internal pipeline error: {0}")]
    Internal(String),
}

/// Detect the format from magic bytes (never from a `Content-Type`).
pub fn sniff(bytes: &[u8]) -> Option<Format> {
    let _ = bytes;
    todo!()
}

/// Transform `bytes` as `req` says.
pub fn render(bytes: &[u8], req: &Request<'_>, limits: &Limits) -> Result<Rendered, PipelineError> {
    let _ = (bytes, req, limits);
    todo!()
}
