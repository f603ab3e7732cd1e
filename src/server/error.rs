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
    #[error(transparent)]
    Options(#[from] OptionsError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Pool(#[from] PoolError),
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::NoRoute => StatusCode::NOT_FOUND,
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
                | PipelineError::TooManyFrames { .. }
                | PipelineError::AnimationTooLarge { .. }
                | PipelineError::OutputTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                PipelineError::Corrupt(_)
                | PipelineError::CropOutside { .. }
                | PipelineError::PageOutOfRange { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                PipelineError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            AppError::Pool(e) => match e {
                PoolError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
                PoolError::Panicked => StatusCode::INTERNAL_SERVER_ERROR,
            },
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
                PipelineError::TooManyFrames { .. } => "too-many-frames",
                PipelineError::AnimationTooLarge { .. } => "animation-too-large",
                PipelineError::OutputTooLarge { .. } => "output-too-large",
                PipelineError::Corrupt(_) => "corrupt-image",
                PipelineError::CropOutside { .. } => "crop-outside-image",
                PipelineError::PageOutOfRange { .. } => "page-out-of-range",
                PipelineError::Internal(_) => "internal-error",
            },
            AppError::Pool(e) => match e {
                PoolError::Overloaded => "overloaded",
                PoolError::Panicked => "internal-error",
            },
        }
    }
}
