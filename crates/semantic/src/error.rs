//! The crate's one error type.

use std::path::PathBuf;

/// Why a model or an example set could not be loaded, or a batch not embedded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A model file is missing or unreadable.
    #[error("the model file {path} cannot be read: {source}")]
    ModelFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The model directory holds something this crate does not run: not a BERT
    /// configuration, a pooling other than the mean, a tokenizer or weights that do not load.
    #[error("the model in {dir} is not usable: {message}")]
    Model {
        /// The model directory.
        dir: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The example sets are not valid: not TOML of the documented shape, empty, too many,
    /// too long.
    #[error("the example sets are not valid: {0}")]
    Examples(String),
    /// Embedding failed inside the model (a tensor operation or the tokenizer). Not the
    /// input's fault: any text, once truncated to [`crate::MAX_TOKENS`], embeds.
    #[error("embedding failed: {0}")]
    Embed(String),
}

impl Error {
    /// A stable snake_case code, for logs and API answers.
    pub fn code(&self) -> &'static str {
        match self {
            Error::ModelFile { .. } => "semantic_model_missing",
            Error::Model { .. } => "semantic_model_invalid",
            Error::Examples(_) => "semantic_examples_invalid",
            Error::Embed(_) => "semantic_embed_failed",
        }
    }
}
