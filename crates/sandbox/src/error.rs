//! The one error type of this crate.

/// Why a decode through the sandbox gave no hashes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The decode ran and refused the input (or failed inside), exactly as in-process decoding
    /// would have: the engine's error, with its stable code. A request that ran past its
    /// deadline and whose worker was killed comes back here too, as the media crate's
    /// `decode_timeout`.
    #[error(transparent)]
    Decode(#[from] safeguard_engine::Error),

    /// The worker died while decoding this input (a signal such as SIGSEGV or SIGABRT, the
    /// kernel enforcing a resource limit, or something killing it), or answered something that
    /// is not the protocol. Only this request fails; the worker is replaced.
    #[error("the decoder stopped while decoding this input: {0}")]
    Crashed(String),

    /// No worker could be started or made ready (the program is missing, the kernel refused
    /// the seccomp filter, ...). Nothing about the input is known.
    #[error("no decoder worker is available: {0}")]
    Unavailable(String),
}

impl Error {
    /// A stable snake_case code: the engine's for [`Error::Decode`], `decoder_crashed` and
    /// `decoder_unavailable` for the others.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Decode(e) => e.code(),
            Error::Crashed(_) => "decoder_crashed",
            Error::Unavailable(_) => "decoder_unavailable",
        }
    }

    /// A timeout error for a request killed at its deadline.
    pub(crate) fn timeout(limit: std::time::Duration) -> Error {
        Error::Decode(safeguard_engine::Error::Media(
            safeguard_media::Error::DecodeTimeout { limit },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(Error::Crashed("x".into()).code(), "decoder_crashed");
        assert_eq!(Error::Unavailable("x".into()).code(), "decoder_unavailable");
        assert_eq!(
            Error::timeout(std::time::Duration::from_secs(1)).code(),
            "decode_timeout"
        );
        assert_eq!(
            Error::Decode(safeguard_media::Error::Empty.into()).code(),
            "empty_input"
        );
    }
}
