//! API keys: generation, hashing, scopes, and the check every protected request goes through.
//!
//! A key looks like `sg_<key id: 16 hex>_<secret: 64 hex>`. Only the SHA-256 of the whole key is
//! stored (the secret has 256 bits of entropy, so a slow password hash would add nothing), and
//! it is compared in constant time. The key id lets the store find the record without scanning.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use safeguard_store::{NewApiKey, Store};

/// What a key may do. `Admin` may do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Hash media (`/h/*`, `/v1/hash`).
    Hash,
    /// Look up matches (`/m/*`, `/v1/lookup`, ...).
    Match,
    /// Manage banks and their content (`/c/*`, `/v1/banks...`).
    Curate,
    /// Manage API keys, and everything above.
    Admin,
    /// Not a grantable scope: a route marked `Any` accepts every valid key (`/metrics`,
    /// `/openapi.json`).
    Any,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 4] = [Scope::Hash, Scope::Match, Scope::Curate, Scope::Admin];

    /// Stable name.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Hash => "hash",
            Scope::Match => "match",
            Scope::Curate => "curate",
            Scope::Admin => "admin",
            Scope::Any => "any",
        }
    }

    /// Parses [`Scope::name`].
    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.name() == s)
    }
}

/// A newly created key: the only time the full key exists outside the client.
#[derive(Debug, Clone)]
pub struct CreatedKey {
    /// The full key, to show once.
    pub key: String,
    /// Its public id.
    pub key_id: String,
    /// Its scopes.
    pub scopes: Vec<Scope>,
}

fn sha256(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// The key id part of a well-formed key.
fn key_id_of(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("sg_")?;
    let (id, secret) = rest.split_once('_')?;
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(id, 16) && hex(secret, 64)).then_some(id)
}

/// Creates and stores a key with the given scopes.
pub fn create_key(
    store: &dyn Store,
    name: &str,
    scopes: &[Scope],
) -> Result<CreatedKey, safeguard_store::Error> {
    use rand::TryRngCore;
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    // The OS generator: keys must be unpredictable.
    rand::rngs::OsRng
        .try_fill_bytes(&mut id)
        .map_err(|e| safeguard_store::Error::Backend(format!("no OS randomness for a key: {e}")))?;
    rand::rngs::OsRng
        .try_fill_bytes(&mut secret)
        .map_err(|e| safeguard_store::Error::Backend(format!("no OS randomness for a key: {e}")))?;
    let key_id = hex::encode(id);
    let key = format!("sg_{key_id}_{}", hex::encode(secret));
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    store.create_api_key(&NewApiKey {
        key_id: key_id.clone(),
        name: name.to_string(),
        secret_sha256: hex::encode(sha256(&key)),
        scopes: scopes.iter().map(|s| s.name().to_string()).collect(),
    })?;
    Ok(CreatedKey {
        key,
        key_id,
        scopes,
    })
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No `Authorization: Bearer` header.
    Missing,
    /// A key that is malformed, unknown, revoked or wrong.
    Invalid,
    /// A valid key without the scope the route needs.
    Forbidden,
}

/// How long a verified key is trusted without asking the store again. Revocation through the
/// API takes effect at once; a key revoked by the CLI in another process stops working within
/// this time.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
struct CachedKey {
    secret_sha256: [u8; 32],
    scopes: Vec<Scope>,
    revoked: bool,
    fetched: Instant,
}

/// Verifies keys against the store (cached) and the bootstrap admin key.
#[derive(Debug)]
pub struct Authenticator {
    store: Arc<dyn Store>,
    admin_key_sha256: Option<[u8; 32]>,
    /// No authentication at all (`--dev`, loopback only).
    dev: bool,
    cache: Mutex<HashMap<String, CachedKey>>,
}

impl Authenticator {
    /// An authenticator; `admin_key` is `SAFEGUARD_ADMIN_KEY`, if set.
    pub fn new(store: Arc<dyn Store>, admin_key: Option<&str>, dev: bool) -> Authenticator {
        Authenticator {
            store,
            admin_key_sha256: admin_key.map(sha256),
            dev,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Whether requests need a key at all.
    pub fn enabled(&self) -> bool {
        !self.dev
    }

    /// Forgets cached keys (after a revocation).
    pub fn invalidate(&self) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Checks an `Authorization` header value for a scope. Blocking (may read the store).
    pub fn check(&self, header: Option<&str>, need: Scope) -> Result<(), Denied> {
        if self.dev {
            return Ok(());
        }
        let key = header
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(Denied::Missing)?;
        let presented = sha256(key);
        if let Some(admin) = &self.admin_key_sha256 {
            if bool::from(presented.ct_eq(admin)) {
                return Ok(());
            }
        }
        let key_id = key_id_of(key).ok_or(Denied::Invalid)?;
        let cached = self.lookup(key_id)?;
        if cached.revoked || !bool::from(presented.ct_eq(&cached.secret_sha256)) {
            return Err(Denied::Invalid);
        }
        if need == Scope::Any
            || cached.scopes.contains(&need)
            || cached.scopes.contains(&Scope::Admin)
        {
            Ok(())
        } else {
            Err(Denied::Forbidden)
        }
    }

    fn lookup(&self, key_id: &str) -> Result<CachedKey, Denied> {
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = cache.get(key_id) {
                if c.fetched.elapsed() < KEY_CACHE_TTL {
                    return Ok(c.clone());
                }
            }
        }
        // A store failure is not the caller's fault, but failing closed is the only safe
        // answer; the error is logged by the caller's request log.
        let rec = match self.store.api_key(key_id) {
            Ok(Some(r)) => r,
            Ok(None) => return Err(Denied::Invalid),
            Err(e) => {
                tracing::error!(error = %e, "api key lookup failed");
                return Err(Denied::Invalid);
            }
        };
        let mut secret_sha256 = [0u8; 32];
        if hex::decode_to_slice(&rec.secret_sha256, &mut secret_sha256).is_err() {
            tracing::error!(key_id, "stored key hash is not hex");
            return Err(Denied::Invalid);
        }
        let c = CachedKey {
            secret_sha256,
            scopes: rec.scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
            revoked: rec.revoked_at.is_some(),
            fetched: Instant::now(),
        };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: only ids of real keys are cached.
        cache.insert(key_id.to_string(), c.clone());
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_format() {
        assert_eq!(
            key_id_of(&format!("sg_{}_{}", "a".repeat(16), "b".repeat(64))),
            Some("aaaaaaaaaaaaaaaa")
        );
        assert_eq!(key_id_of("sg_short_x"), None);
        assert_eq!(
            key_id_of(&format!("xx_{}_{}", "a".repeat(16), "b".repeat(64))),
            None
        );
        assert_eq!(
            key_id_of(&format!("sg_{}_{}", "g".repeat(16), "b".repeat(64))),
            None
        );
    }
}
