//! imgcdn: an on-the-fly image CDN proxy.
//!
//! A request `/img/<options>/<source>` flows one way: [`server`] parses [`options`] and the
//! [`source`], the [`source::Fetcher`] reads the bytes, the [`pipeline`] renders them on the
//! bounded [`pool`], and the server answers with cache headers. See `ARCHITECTURE.md`.
pub mod bucket;
pub mod cache;
pub mod compat;
pub mod config;
pub mod format;
pub mod layout;
pub mod logwriter;
pub mod metrics;
pub mod options;
pub mod pipeline;
pub mod pool;
pub mod presets;
pub mod server;
pub mod signature;
pub mod source;
pub mod warm;
