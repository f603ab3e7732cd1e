//! Bucket reads: the `source.buckets` allow-list, one object-store client per bucket (built on
//! first use with [`crate::bucket::open`] and kept), and the capped object read.
//!
//! It does not retry beyond the client's one retry, cache, or look at the object's own
//! attributes (`Cache-Control`, `Content-Type`): a bucket object is always storable. The
//! caller (`fetch.rs`) holds the fetch deadline and a place in the fetch gates.
//!
//! Errors map like an HTTP origin's answers: a missing object is `NotFound` (404); refused
//! credentials are `Forbidden` (403) — note that S3 answers 403, not 404, for a missing key
//! when the credentials lack `s3:ListBucket` on the bucket; anything else is `Origin` (502),
//! with a generic text that names no endpoint.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt as _;
use object_store::path::Path;
use object_store::{GetOptions, ObjectStore};

use super::bucket::{BucketName, BucketObject};
use super::{Settings, SourceError};
use crate::bucket::{Budget, Endpoint};

/// Upper bound on the buffer reserved up front from an object's (checked) size.
const MAX_PREALLOC: u64 = 1 << 20;

pub(super) struct Objects {
    allow: Vec<BucketName>,
    endpoint: Endpoint,
    budget: Budget,
    /// One client per allowed bucket; at most `allow.len()` entries.
    clients: Mutex<HashMap<BucketName, Arc<dyn ObjectStore>>>,
}

impl Objects {
    pub(super) fn new(settings: &Settings) -> Objects {
        Objects {
            allow: settings.buckets.clone(),
            endpoint: Endpoint {
                // Sources are only read; no conditional creates.
                conditional_put: false,
                ..settings.bucket_endpoint.clone()
            },
            budget: Budget {
                connect: settings.connect_timeout.min(settings.timeout),
                request: settings.timeout,
                retries: 1,
            },
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// `Forbidden` unless the object's bucket is on `source.buckets`.
    pub(super) fn authorize(&self, object: &BucketObject) -> Result<(), SourceError> {
        if self.allow.contains(&object.bucket) {
            Ok(())
        } else {
            Err(SourceError::Forbidden("bucket not allowed".to_owned()))
        }
    }

    /// The client of an allowed bucket, built on first use (no I/O).
    fn client(&self, bucket: &BucketName) -> Result<Arc<dyn ObjectStore>, SourceError> {
        let mut clients = self
            .clients
            .lock()
            .map_err(|_| origin("bucket clients unavailable"))?;
        if let Some(client) = clients.get(bucket) {
            return Ok(client.clone());
        }
        let (client, _) = crate::bucket::open(&bucket.to_string(), &self.endpoint, self.budget)
            .map_err(|_| origin("cannot build the bucket client"))?;
        clients.insert(bucket.clone(), client.clone());
        Ok(client)
    }

    /// Read the object, refusing more than `limit` bytes before and while streaming. The caller
    /// has authorised it and holds the deadline.
    pub(super) async fn read(
        &self,
        object: &BucketObject,
        limit: u64,
    ) -> Result<Bytes, SourceError> {
        self.authorize(object)?;
        let client = self.client(&object.bucket)?;
        let path = Path::parse(&object.key)
            .map_err(|_| SourceError::BadSource("invalid object key".to_owned()))?;
        let options = GetOptions {
            version: object.version.clone(),
            ..GetOptions::default()
        };
        let result = client.get_opts(&path, options).await.map_err(store_error)?;
        let size = result.meta.size;
        if size > limit {
            return Err(SourceError::TooLarge { limit });
        }
        let mut buf = BytesMut::with_capacity(usize::try_from(size.min(MAX_PREALLOC)).unwrap_or(0));
        let mut stream = result.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(store_error)?;
            if buf.len() as u64 + chunk.len() as u64 > limit {
                return Err(SourceError::TooLarge { limit });
            }
            buf.extend_from_slice(&chunk);
        }
        if buf.len() as u64 != size {
            return Err(origin("incomplete object body"));
        }
        Ok(buf.freeze())
    }
}

/// Map an object-store error like the HTTP origin's statuses; the texts are generic so that no
/// endpoint, key or provider message reaches a client.
fn store_error(err: object_store::Error) -> SourceError {
    use object_store::Error as E;
    match err {
        E::NotFound { .. } => SourceError::NotFound,
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => {
            SourceError::Forbidden("bucket refused access".to_owned())
        }
        E::InvalidPath { .. } => SourceError::BadSource("invalid object key".to_owned()),
        _ => origin("bucket unreachable or failed"),
    }
}

fn origin(why: &str) -> SourceError {
    SourceError::Origin(why.to_owned())
}
