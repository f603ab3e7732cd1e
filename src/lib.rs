//! imgcdn: an on-the-fly image CDN proxy.
pub mod format;
pub mod layout;
pub mod options;
pub mod pipeline;
pub mod source;
