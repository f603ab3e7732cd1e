//! imgcdn: an on-the-fly image CDN proxy.
pub mod format;
pub mod options;
pub mod layout;
pub mod pipeline;
pub mod source;
