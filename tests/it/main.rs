//! Integration tests: the real server on an ephemeral loopback port against a real origin
//! started by the test (in-process hyper) or files on disk. No network beyond loopback.

mod abuse;
mod binary;
mod buckets;
mod cache;
mod compat;
mod connections;
mod disk;
mod errors;
mod fleet;
mod formats;
mod headers;
mod hostile_load;
mod images;
mod lifecycle;
mod meta;
mod playground;
mod s3server;
mod security;
mod sources;
mod support;
mod urls;
mod warm;
