//! Sentence embeddings from a local BERT model: tokenise, run the encoder, mean-pool over the
//! real tokens, normalise to unit length (what sentence-transformers does for
//! `all-MiniLM-L6-v2` and its kind).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::Error;

/// Tokens kept per message (the `[CLS]` and `[SEP]` markers included); the rest is cut.
/// Chat messages are short, and attention costs grow with the square of the length.
pub const MAX_TOKENS: usize = 128;

/// A loaded sentence-embedding model. `Send + Sync`: one is shared by every request.
pub struct Embedder {
    model: BertModel,
    tokenizer: Tokenizer,
    dim: usize,
    dir: PathBuf,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("dir", &self.dir)
            .field("dim", &self.dim)
            .finish()
    }
}

fn read(dir: &Path, name: &str) -> Result<Vec<u8>, Error> {
    let path = dir.join(name);
    std::fs::read(&path).map_err(|source| Error::ModelFile { path, source })
}

impl Embedder {
    /// Loads the model in `dir`: `config.json` (a BERT configuration), `tokenizer.json`,
    /// `model.safetensors`, and, when present, sentence-transformers' `1_Pooling/config.json`,
    /// which must ask for mean pooling (the only pooling implemented).
    pub fn open(dir: &Path) -> Result<Embedder, Error> {
        let bad = |message: String| Error::Model {
            dir: dir.to_path_buf(),
            message,
        };
        let config: Config = serde_json::from_slice(&read(dir, "config.json")?)
            .map_err(|e| bad(format!("config.json is not a BERT configuration: {e}")))?;
        if dir.join("1_Pooling/config.json").exists() {
            let pooling: serde_json::Value =
                serde_json::from_slice(&read(dir, "1_Pooling/config.json")?)
                    .map_err(|e| bad(format!("1_Pooling/config.json: {e}")))?;
            if pooling["pooling_mode_mean_tokens"] != serde_json::Value::Bool(true) {
                return Err(bad(
                    "1_Pooling/config.json asks for a pooling other than the mean of the tokens"
                        .into(),
                ));
            }
        }
        let mut tokenizer = Tokenizer::from_bytes(read(dir, "tokenizer.json")?)
            .map_err(|e| bad(format!("tokenizer.json: {e}")))?;
        // The file pads every input to a fixed 128 tokens; pad a batch only to its longest.
        let pad_token = tokenizer
            .id_to_token(config.pad_token_id as u32)
            .ok_or_else(|| bad(format!("no token for pad_token_id {}", config.pad_token_id)))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            pad_id: config.pad_token_id as u32,
            pad_token,
            ..PaddingParams::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS.min(config.max_position_embeddings),
                ..TruncationParams::default()
            }))
            .map_err(|e| bad(format!("truncation: {e}")))?;
        // Read into memory rather than mapped: 90 MB once, and no `unsafe` for a mapping.
        let weights = read(dir, "model.safetensors")?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)
            .map_err(|e| bad(format!("model.safetensors: {e}")))?;
        let model = BertModel::load(vb, &config)
            .map_err(|e| bad(format!("model.safetensors does not fit config.json: {e}")))?;
        Ok(Embedder {
            model,
            tokenizer,
            dim: config.hidden_size,
            dir: dir.to_path_buf(),
        })
    }

    /// The length of each embedding.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Embeds each text: unit-length vectors of [`Embedder::dim`] numbers, in order. Texts
    /// longer than [`MAX_TOKENS`] tokens are cut; an empty text embeds too (the markers).
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, Error> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let fail = |e: &dyn std::fmt::Display| Error::Embed(e.to_string());
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| fail(&e))?;
        let n = encodings.len();
        let len = encodings[0].get_ids().len();
        let mut ids = Vec::with_capacity(n * len);
        let mut types = Vec::with_capacity(n * len);
        let mut mask = Vec::with_capacity(n * len);
        for e in &encodings {
            ids.extend_from_slice(e.get_ids());
            types.extend_from_slice(e.get_type_ids());
            mask.extend_from_slice(e.get_attention_mask());
        }
        let dev = &Device::Cpu;
        let t = |v: Vec<u32>| Tensor::from_vec(v, (n, len), dev).map_err(|e| fail(&e));
        let (ids, types, mask) = (t(ids)?, t(types)?, t(mask)?);
        let pooled = (|| {
            let hidden = self.model.forward(&ids, &types, Some(&mask))?;
            // Mean over the real tokens only: padding is masked out of the sum and the count.
            let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let sum = hidden.broadcast_mul(&m)?.sum(1)?;
            // At least 1: a tokeniser without markers gives an empty text no token at all.
            let count = m.sum(1)?.clamp(1f32, f32::MAX)?;
            let mean = sum.broadcast_div(&count)?;
            let norm = mean
                .sqr()?
                .sum_keepdim(1)?
                .sqrt()?
                .clamp(1e-12f32, f32::MAX)?;
            mean.broadcast_div(&norm)?.to_vec2::<f32>()
        })()
        .map_err(|e| fail(&e))?;
        Ok(pooled)
    }
}
