//! Object-store clients (S3 and S3-compatibles, GCS, Azure Blob) built from imgcdn's
//! configuration, for the shared result store (`cache::store`) and `s3://` sources.
//!
//! A URL `s3://<bucket>/<prefix>` (or `gs://`, `az://`) names a bucket and a key prefix. The
//! client is `object_store`'s, with imgcdn's budgets instead of the crate's request-path-hostile
//! defaults (30 s per request, 10 retries over up to 3 minutes): a connect timeout, a
//! per-request timeout and at most `retries` retries with a short backoff. Credentials come from
//! the standard provider chain (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`,
//! web identity, ECS and EC2 instance roles; `GOOGLE_*`, `AZURE_*`) unless the configuration
//! names static keys. Building a client does no I/O; the endpoint is operator configuration and
//! is not subject to the origin address policy (users can only name buckets, never endpoints).

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::path::Path;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, ObjectStoreScheme, RetryConfig};

/// Where and how to reach a bucket (everything but its name). `Debug` leaves the secret out.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Endpoint {
    /// S3-compatible server (`https://…` for R2, MinIO, Ceph); empty = the provider's own.
    pub endpoint: String,
    /// S3 region; empty = `AWS_REGION`/`AWS_DEFAULT_REGION`, else `us-east-1`.
    pub region: String,
    /// Allow a plain-http endpoint (a loopback test server).
    pub allow_http: bool,
    /// Static S3 credentials; both empty = the provider chain.
    pub access_key_id: String,
    pub secret_access_key: String,
    /// `If-None-Match: *` creates for S3 (false for servers that answer 501 to it).
    pub conditional_put: bool,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("allow_http", &self.allow_http)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("conditional_put", &self.conditional_put)
            .finish()
    }
}

/// Time budgets of every request a client makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub connect: Duration,
    /// One HTTP request, body included.
    pub request: Duration,
    /// Retries after a failed request (5xx, 429, connection errors): 0 or 1 on a request path.
    pub retries: usize,
}

/// A client for the bucket named by `url` (`s3://bucket/prefix`, `gs://…`, `az://…`) and the
/// key prefix within it. `Err` names what is wrong with the URL.
pub fn open(
    url: &str,
    endpoint: &Endpoint,
    budget: Budget,
) -> Result<(Arc<dyn ObjectStore>, Path), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    let (scheme, prefix) = ObjectStoreScheme::parse(&parsed).map_err(|e| format!("{url}: {e}"))?;
    let client = ClientOptions::new()
        .with_connect_timeout(budget.connect)
        .with_timeout(budget.request)
        .with_pool_idle_timeout(Duration::from_secs(30))
        .with_allow_http(endpoint.allow_http);
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
            base: 2.0,
        },
        max_retries: budget.retries,
        retry_timeout: budget.request,
    };
    let store: Arc<dyn ObjectStore> = match scheme {
        ObjectStoreScheme::AmazonS3 => {
            let mut b = AmazonS3Builder::from_env()
                .with_url(url)
                .with_client_options(client)
                .with_retry(retry)
                .with_conditional_put(if endpoint.conditional_put {
                    S3ConditionalPut::ETagMatch
                } else {
                    S3ConditionalPut::Disabled
                })
                .with_allow_http(endpoint.allow_http);
            if !endpoint.endpoint.is_empty() {
                b = b.with_endpoint(&endpoint.endpoint);
            }
            if !endpoint.region.is_empty() {
                b = b.with_region(&endpoint.region);
            } else if std::env::var_os("AWS_REGION").is_none()
                && std::env::var_os("AWS_DEFAULT_REGION").is_none()
            {
                b = b.with_region("us-east-1");
            }
            if !endpoint.access_key_id.is_empty() {
                b = b
                    .with_access_key_id(&endpoint.access_key_id)
                    .with_secret_access_key(&endpoint.secret_access_key);
            }
            Arc::new(b.build().map_err(|e| format!("{url}: {e}"))?)
        }
        ObjectStoreScheme::GoogleCloudStorage => Arc::new(
            GoogleCloudStorageBuilder::from_env()
                .with_url(url)
                .with_client_options(client)
                .with_retry(retry)
                .build()
                .map_err(|e| format!("{url}: {e}"))?,
        ),
        ObjectStoreScheme::MicrosoftAzure => Arc::new(
            MicrosoftAzureBuilder::from_env()
                .with_url(url)
                .with_client_options(client)
                .with_retry(retry)
                .build()
                .map_err(|e| format!("{url}: {e}"))?,
        ),
        _ => return Err(format!("{url}: not s3://, gs:// or az://")),
    };
    Ok((store, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget() -> Budget {
        Budget {
            connect: Duration::from_secs(1),
            request: Duration::from_secs(1),
            retries: 1,
        }
    }

    #[test]
    fn bucket_urls_give_a_client_and_a_prefix() {
        let ep = Endpoint {
            endpoint: "http://127.0.0.1:9".into(),
            allow_http: true,
            access_key_id: "a".into(),
            secret_access_key: "b".into(),
            conditional_put: true,
            ..Endpoint::default()
        };
        let (_, prefix) = open("s3://cache/prod/v1", &ep, budget()).unwrap();
        assert_eq!(prefix.as_ref(), "prod/v1");
        let (_, prefix) = open("s3://cache", &ep, budget()).unwrap();
        assert_eq!(prefix.as_ref(), "");
    }

    #[test]
    fn other_schemes_are_refused() {
        for url in [
            "http://example.com/x",
            "file:///tmp",
            "nonsense",
            "memory:///",
        ] {
            assert!(open(url, &Endpoint::default(), budget()).is_err(), "{url}");
        }
    }
}
