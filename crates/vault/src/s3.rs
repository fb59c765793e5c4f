//! The S3-compatible blob store, through Apache Arrow's `object_store` crate (AWS S3, MinIO,
//! Ceph RGW, Cloudflare R2, moto in tests).
//!
//! Each blob is one object, written in one `PUT` with `If-None-Match: *` (unless
//! `conditional_put` is off), so an existing object is never replaced. The bucket sees only
//! ciphertext under random keys. Turn on the bucket's own versioning or object lock only
//! knowing that surviving versions are still unreadable without their wrapped keys (which is
//! what crypto-shredding relies on) but do keep the bytes around.

use std::sync::Arc;

use bytes::Bytes;
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, PutMode, PutOptions, PutPayload};

use crate::blob::{BlobKey, BlobStore};
use crate::envelope::BLOB_HEADER_LEN;
use crate::{Error, Result, S3Config, MAX_OBJECT_SIZE};

/// Largest object `get` downloads, bytes: the largest vault object plus header and tag.
const MAX_BLOB_OBJECT: u64 =
    MAX_OBJECT_SIZE + BLOB_HEADER_LEN as u64 + safeguard_seal::TAG_LEN as u64;

/// Blobs as objects in an S3-compatible bucket.
#[derive(Debug, Clone)]
pub struct S3BlobStore {
    /// The bucket's client.
    store: Arc<dyn ObjectStore>,
    /// Prefix of every key, validated like a [`BlobKey`]; empty for none.
    prefix: String,
    /// Whether puts are conditional (`If-None-Match: *`).
    conditional_put: bool,
    /// For error messages.
    bucket: String,
}

impl S3BlobStore {
    /// A client for the bucket `cfg` names. Nothing is sent until the first operation, so a
    /// wrong endpoint or credential shows there.
    pub fn new(cfg: &S3Config) -> Result<S3BlobStore> {
        cfg.validate()?;
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&cfg.bucket)
            .with_region(&cfg.region)
            .with_allow_http(cfg.allow_http)
            .with_client_options(
                ClientOptions::new()
                    .with_allow_http(cfg.allow_http)
                    .with_timeout(cfg.request_timeout()),
            )
            .with_conditional_put(if cfg.conditional_put {
                S3ConditionalPut::ETagMatch
            } else {
                S3ConditionalPut::Disabled
            });
        if let Some(e) = &cfg.endpoint {
            b = b.with_endpoint(e);
        }
        // Credentials: the configured pair, else the standard variables, else the builder's
        // own chain (instance profile, web identity). Only these variables are read, not all
        // of AWS_*, so an unrelated AWS_ENDPOINT in the environment cannot redirect evidence.
        let env = |v: &str| std::env::var(v).ok().filter(|s| !s.is_empty());
        let pair = match (&cfg.access_key_id, &cfg.secret_access_key) {
            (Some(id), Some(secret)) => Some((id.clone(), secret.clone(), None)),
            _ => match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
                (Some(id), Some(secret)) => Some((id, secret, env("AWS_SESSION_TOKEN"))),
                _ => None,
            },
        };
        if let Some((id, secret, token)) = pair {
            b = b.with_access_key_id(id).with_secret_access_key(secret);
            if let Some(t) = token {
                b = b.with_token(t);
            }
        }
        let store = b
            .build()
            .map_err(|e| Error::Config(format!("vault.s3: {e}")))?;
        Ok(S3BlobStore {
            store: Arc::new(store),
            prefix: cfg.prefix.clone().unwrap_or_default(),
            conditional_put: cfg.conditional_put,
            bucket: cfg.bucket.clone(),
        })
    }

    /// The object path of `key`: the prefix, then the key. Both are validated segment lists,
    /// which `object_store` accepts unchanged.
    fn path(&self, key: &BlobKey) -> Result<Path> {
        let full = if self.prefix.is_empty() {
            key.as_str().to_string()
        } else {
            format!("{}/{}", self.prefix, key)
        };
        Path::parse(&full).map_err(|_| Error::InvalidBlobKey {
            key: full,
            reason: "not a valid object path",
        })
    }

    fn fail(&self, op: &'static str, key: &BlobKey, e: object_store::Error) -> Error {
        match e {
            object_store::Error::NotFound { .. } => Error::NotFound {
                key: key.to_string(),
            },
            object_store::Error::AlreadyExists { .. } => Error::AlreadyExists {
                key: key.to_string(),
            },
            e => Error::Backend {
                op,
                key: format!("s3://{}/{}", self.bucket, key),
                message: e.to_string(),
            },
        }
    }
}

#[async_trait::async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> Result<()> {
        let opts = PutOptions {
            mode: if self.conditional_put {
                PutMode::Create
            } else {
                PutMode::Overwrite
            },
            ..PutOptions::default()
        };
        self.store
            .put_opts(&self.path(key)?, PutPayload::from(bytes), opts)
            .await
            .map(|_| ())
            .map_err(|e| match e {
                // A 404 on a write is the bucket, not the key.
                e @ object_store::Error::NotFound { .. } => Error::Backend {
                    op: "put",
                    key: format!("s3://{}/{}", self.bucket, key),
                    message: e.to_string(),
                },
                e => self.fail("put", key, e),
            })
    }

    async fn get(&self, key: &BlobKey) -> Result<Bytes> {
        let r = self
            .store
            .get(&self.path(key)?)
            .await
            .map_err(|e| self.fail("get", key, e))?;
        if r.meta.size > MAX_BLOB_OBJECT {
            return Err(Error::Corrupt {
                object_id: key.to_string(),
                reason: format!("object of {} bytes is larger than any blob", r.meta.size),
            });
        }
        r.bytes().await.map_err(|e| self.fail("get", key, e))
    }

    async fn delete(&self, key: &BlobKey) -> Result<()> {
        match self.store.delete(&self.path(key)?).await {
            Ok(()) => Ok(()),
            // S3 answers 204 for a missing key; other stores may say 404. Either way it is
            // gone, which is what was asked.
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.fail("delete", key, e)),
        }
    }

    async fn exists(&self, key: &BlobKey) -> Result<bool> {
        match self.store.head(&self.path(key)?).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.fail("head", key, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_never_prints() {
        let mut cfg = S3Config::new(Some("https://s3.example.invalid".into()), "b");
        cfg.access_key_id = Some("AKIDEXAMPLE".into());
        cfg.secret_access_key = Some("wJalrXUtnFEMI-example-secret".into());
        let store = S3BlobStore::new(&cfg).unwrap();
        for text in [format!("{store:?}"), format!("{cfg:?}")] {
            assert!(!text.contains("wJalrXUtnFEMI"), "{text}");
            assert!(text.contains("AKIDEXAMPLE"), "{text}");
        }
    }

    #[test]
    fn plain_http_needs_allow_http() {
        let cfg = S3Config::new(Some("http://127.0.0.1:9000".into()), "b");
        let err = S3BlobStore::new(&cfg).unwrap_err();
        assert!(err.to_string().contains("allow_http"), "{err}");
    }
}
