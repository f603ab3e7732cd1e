//! Every way a request can fail, and the one exhaustive mapping from failure to HTTP status.
//!
//! Classified by who is at fault: the client (4xx), the origin (502/504, 404 passed through),
//! us (500), or load (503). Each error has a stable kebab-case code, written in the body and
//! logs; the human text after it may change. There is deliberately no `_` arm anywhere here,
//! so a new variant in any module forces a decision.

use http::StatusCode;

use crate::options::OptionsError;
use crate::pipeline::PipelineError;
use crate::pool::PoolError;
use crate::source::SourceError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum AppError {
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("{0}")]
    Signature(&'static str),
    #[error("{0}")]
    BadRequest(String),
    #[error("no such route")]
    NoRoute,
    #[error("method not allowed: only {allow}")]
    Method { allow: &'static str },
    #[error("URL longer than {limit} bytes")]
    UrlTooLong { limit: usize },
    #[error("missing source: expected /img/<options>/<source>")]
    MissingSource,
    /// A dialect URL past its expiry (imgproxy's `exp:`).
    #[error("URL expired")]
    Expired,
    #[error(transparent)]
    Options(#[from] OptionsError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Pool(#[from] PoolError),
}

impl From<crate::compat::Error> for AppError {
    fn from(e: crate::compat::Error) -> Self {
        match e {
            crate::compat::Error::Option(e) => AppError::Options(e),
            crate::compat::Error::Signature(reason) => AppError::Signature(reason),
            crate::compat::Error::Expired => AppError::Expired,
            crate::compat::Error::MissingSource => AppError::MissingSource,
        }
    }
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::NoRoute | AppError::Expired => StatusCode::NOT_FOUND,
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::Signature(_) => StatusCode::FORBIDDEN,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Method { .. } => StatusCode::METHOD_NOT_ALLOWED,
            AppError::UrlTooLong { .. } => StatusCode::URI_TOO_LONG,
            AppError::MissingSource | AppError::Options(_) => StatusCode::BAD_REQUEST,
            AppError::Source(e) => match e {
                SourceError::BadSource(_) => StatusCode::BAD_REQUEST,
                SourceError::Forbidden(_) => StatusCode::FORBIDDEN,
                SourceError::NotFound => StatusCode::NOT_FOUND,
                SourceError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                SourceError::Origin(_) => StatusCode::BAD_GATEWAY,
                SourceError::Timeout => StatusCode::GATEWAY_TIMEOUT,
            },
            AppError::Pipeline(e) => match e {
                PipelineError::Unsupported(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                PipelineError::SourceTooLarge { .. }
                | PipelineError::DecodeTooLarge { .. }
                | PipelineError::MetadataTooLarge { .. }
                | PipelineError::TooManyFrames { .. }
                | PipelineError::AnimationTooLarge { .. }
                | PipelineError::OutputTooLarge { .. }
                | PipelineError::UpscaleTooLarge { .. }
                | PipelineError::AvifTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                PipelineError::Timeout => StatusCode::SERVICE_UNAVAILABLE,
                PipelineError::Corrupt(_)
                | PipelineError::CropOutside { .. }
                | PipelineError::PageOutOfRange { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                PipelineError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            AppError::Pool(e) => match e {
                PoolError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
                PoolError::Panicked => StatusCode::INTERNAL_SERVER_ERROR,
                PoolError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            },
        }
    }

    /// Whether the same request would fail the same way if repeated now: an origin 404/410, a
    /// source over a limit, an image we cannot read. Such failures are remembered briefly
    /// (`cache.negative_ttl_s`) and sent with that `max-age`; overload, timeouts and origin
    /// errors never are.
    pub fn is_deterministic(&self) -> bool {
        match self {
            AppError::Source(e) => match e {
                SourceError::NotFound | SourceError::TooLarge { .. } => true,
                SourceError::BadSource(_)
                | SourceError::Forbidden(_)
                | SourceError::Origin(_)
                | SourceError::Timeout => false,
            },
            AppError::Pipeline(e) => match e {
                PipelineError::Unsupported(_)
                | PipelineError::SourceTooLarge { .. }
                | PipelineError::DecodeTooLarge { .. }
                | PipelineError::MetadataTooLarge { .. }
                | PipelineError::TooManyFrames { .. }
                | PipelineError::AnimationTooLarge { .. }
                | PipelineError::OutputTooLarge { .. }
                | PipelineError::UpscaleTooLarge { .. }
                | PipelineError::AvifTooLarge { .. }
                | PipelineError::CropOutside { .. }
                | PipelineError::PageOutOfRange { .. }
                | PipelineError::Corrupt(_) => true,
                PipelineError::Timeout | PipelineError::Internal(_) => false,
            },
            AppError::Pool(e) => match e {
                PoolError::TooLarge { .. } => true,
                PoolError::Overloaded | PoolError::Panicked => false,
            },
            AppError::Unauthorized
            | AppError::Signature(_)
            | AppError::BadRequest(_)
            | AppError::NoRoute
            | AppError::Method { .. }
            | AppError::UrlTooLong { .. }
            | AppError::MissingSource
            | AppError::Expired
            | AppError::Options(_) => false,
        }
    }

    /// A stable machine-readable code for bodies and logs.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::NoRoute => "no-route",
            AppError::Unauthorized => "unauthorized",
            AppError::Signature(_) => "bad-signature",
            AppError::BadRequest(_) => "bad-request",
            AppError::Method { .. } => "method-not-allowed",
            AppError::UrlTooLong { .. } => "url-too-long",
            AppError::MissingSource => "missing-source",
            AppError::Expired => "expired",
            AppError::Options(_) => "bad-options",
            AppError::Source(e) => match e {
                SourceError::BadSource(_) => "bad-source",
                SourceError::Forbidden(_) => "source-forbidden",
                SourceError::NotFound => "source-not-found",
                SourceError::TooLarge { .. } => "source-too-large",
                SourceError::Origin(_) => "origin-error",
                SourceError::Timeout => "origin-timeout",
            },
            AppError::Pipeline(e) => match e {
                PipelineError::Unsupported(_) => "unsupported-format",
                PipelineError::SourceTooLarge { .. } => "source-too-many-pixels",
                PipelineError::DecodeTooLarge { .. } => "decode-too-large",
                PipelineError::MetadataTooLarge { .. } => "metadata-too-large",
                PipelineError::TooManyFrames { .. } => "too-many-frames",
                PipelineError::AnimationTooLarge { .. } => "animation-too-large",
                PipelineError::OutputTooLarge { .. } => "output-too-large",
                PipelineError::UpscaleTooLarge { .. } => "upscale-too-large",
                PipelineError::AvifTooLarge { .. } => "avif-too-large",
                PipelineError::Timeout => "job-timeout",
                PipelineError::Corrupt(_) => "corrupt-image",
                PipelineError::CropOutside { .. } => "crop-outside-image",
                PipelineError::PageOutOfRange { .. } => "page-out-of-range",
                PipelineError::Internal(_) => "internal-error",
            },
            AppError::Pool(e) => match e {
                PoolError::Overloaded => "overloaded",
                PoolError::Panicked => "internal-error",
                PoolError::TooLarge { .. } => "job-too-large",
            },
        }
    }
}
