//! API keys: generation, hashing, scopes, and the check every protected request goes through.
//!
//! A key looks like `sg_<key id: 16 hex>_<secret: 64 hex>`. Only the SHA-256 of the whole key is
//! stored (the secret has 256 bits of entropy, so a slow password hash would add nothing), and
//! it is compared in constant time. The key id lets the store find the record without scanning.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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
    /// Submit content for matching and action (`/v1/content`), and ask for contact decisions
    /// (`/v1/contact/decide`).
    Submit,
    /// Manage API keys, rules, cases, webhooks, and everything above.
    Admin,
    /// Approve another person's confirmed decision so the case may be reported
    /// (`/v1/cases/{id}/approve`): the second person of the two-person rule.
    Approve,
    /// Read the transparency figures and the audit log, and nothing else.
    Audit,
    /// Not a grantable scope: a route marked `Any` accepts every valid key (`/metrics`,
    /// `/openapi.json`).
    Any,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 7] = [
        Scope::Hash,
        Scope::Match,
        Scope::Curate,
        Scope::Submit,
        Scope::Admin,
        Scope::Approve,
        Scope::Audit,
    ];

    /// Stable name.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Hash => "hash",
            Scope::Match => "match",
            Scope::Curate => "curate",
            Scope::Submit => "submit",
            Scope::Admin => "admin",
            Scope::Approve => "approve",
            Scope::Audit => "audit",
            Scope::Any => "any",
        }
    }

    /// The scope's bit in a cached key's scope set.
    fn bit(self) -> u8 {
        1 << (self as u8)
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

/// Who made a request, for records and logs: the key id of its API key, `admin` for the
/// bootstrap key, `dev` in development mode. Set by the scope check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyId(pub String);

impl KeyId {
    /// The actor of a request with this `Authorization` header value.
    pub fn from_header(header: Option<&str>, dev: bool) -> KeyId {
        if dev {
            return KeyId("dev".into());
        }
        let key = header.and_then(|h| h.strip_prefix("Bearer "));
        KeyId(
            key.and_then(key_id_of)
                .map(|id| format!("key:{}", id.to_ascii_lowercase()))
                .unwrap_or_else(|| "admin".into()),
        )
    }
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

/// How long a verified key is trusted without asking the store again, counted from the start
/// of the read that fetched it. Revocation through the API takes effect at once; a key
/// revoked by another process (`safeguard keys revoke` on the same database) stops working
/// within this time plus one read, which keeps it under the one second the operator is
/// promised. The price is one indexed read per key and half second, whatever the load.
pub const KEY_CACHE_TTL: Duration = Duration::from_millis(500);

/// How long a key id the store does not know is remembered as unknown. Key ids are 64 random
/// bits drawn at creation, so a remembered id becoming a real key is a chance of about 2^-64;
/// the limit only stops the set from holding ids forever.
pub const UNKNOWN_KEY_TTL: Duration = Duration::from_secs(60);

/// Most unknown key ids remembered at once (a map entry and a queue entry, under 80 bytes
/// together, so under 5 MiB in all); past it the oldest is forgotten. Whatever an attacker sends, this is all the memory it costs.
pub const MAX_UNKNOWN_KEYS: usize = 65_536;

/// Most store reads at once for key ids the cache has never seen. A flood of invented keys
/// then occupies at most this many blocking threads and SQLite reader connections; the rest
/// wait (without a thread) under the request limit and timeout. Keys already known refresh
/// outside this bound, so the flood cannot delay them.
pub const MAX_UNKNOWN_KEY_READS: usize = 2;

/// A stored key as the cache holds it: small and `Copy`, so a hit allocates nothing.
#[derive(Debug, Clone, Copy)]
struct KnownKey {
    secret_sha256: [u8; 32],
    /// Bit `Scope::bit` per granted scope.
    scopes: u8,
    /// Revocation is final (the store has no "unrevoke"), so a revoked entry never expires.
    revoked: bool,
    /// When the read that fetched it started.
    fetched: Instant,
}

impl KnownKey {
    fn verdict(&self, presented: &[u8; 32], need: Scope) -> Result<(), Denied> {
        if self.revoked || !bool::from(presented.ct_eq(&self.secret_sha256)) {
            return Err(Denied::Invalid);
        }
        if need == Scope::Any || self.scopes & (need.bit() | Scope::Admin.bit()) != 0 {
            Ok(())
        } else {
            Err(Denied::Forbidden)
        }
    }

    fn fresh(&self, now: Instant) -> bool {
        self.revoked || now.saturating_duration_since(self.fetched) < KEY_CACHE_TTL
    }
}

/// Key ids the store does not know, with a hard bound on their number: first in, first
/// forgotten.
#[derive(Debug)]
struct UnknownIds {
    /// When each id was found unknown.
    at: HashMap<u64, Instant>,
    /// Insertion order. Each id in `at` has exactly one entry here with the same instant;
    /// older entries of a re-inserted id are stale and skipped, so `at.len() <= order.len()
    /// <= cap`.
    order: VecDeque<(u64, Instant)>,
    cap: usize,
}

impl UnknownIds {
    fn new(cap: usize) -> UnknownIds {
        UnknownIds {
            at: HashMap::new(),
            order: VecDeque::new(),
            cap: cap.max(1),
        }
    }

    fn contains(&self, id: u64, now: Instant) -> bool {
        self.at
            .get(&id)
            .is_some_and(|t| now.saturating_duration_since(*t) < UNKNOWN_KEY_TTL)
    }

    fn insert(&mut self, id: u64, now: Instant) {
        while self.order.len() >= self.cap {
            let Some((old, t)) = self.order.pop_front() else {
                break;
            };
            if self.at.get(&old) == Some(&t) {
                self.at.remove(&old);
            }
        }
        self.at.insert(id, now);
        self.order.push_back((id, now));
    }

    fn clear(&mut self) {
        self.at.clear();
        self.order.clear();
    }
}

/// What the cache holds, under one lock.
#[derive(Debug)]
struct Cache {
    /// Keys the store has (revoked ones included). Bounded by the number of stored keys.
    known: HashMap<u64, KnownKey>,
    unknown: UnknownIds,
    /// Bumped by [`Authenticator::invalidate`]: a read that started before it must not put
    /// back what it read.
    generation: u64,
}

/// What the cache alone says about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cached {
    /// Decided without the store.
    Decided(Result<(), Denied>),
    /// The store must be read ([`Authenticator::check`], on a blocking thread). `unknown`: the
    /// key id was never seen (or was forgotten), so the read should hold a permit from
    /// [`Authenticator::unknown_key_permit`].
    Miss {
        /// Whether the key id is new to the cache.
        unknown: bool,
    },
}

/// Counters of the key checks, for tests and diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthStats {
    /// Store reads made for key checks since start.
    pub store_reads: u64,
    /// Unknown key ids remembered now.
    pub unknown_cached: usize,
    /// The most store reads that ran at once.
    pub peak_concurrent_reads: usize,
}

/// Verifies keys against the store (cached) and the bootstrap admin key.
#[derive(Debug)]
pub struct Authenticator {
    store: Arc<dyn Store>,
    admin_key_sha256: Option<[u8; 32]>,
    /// No authentication at all (`--dev`, loopback only).
    dev: bool,
    cache: Mutex<Cache>,
    /// Permits for reads of unknown key ids ([`MAX_UNKNOWN_KEY_READS`]); never closed.
    unknown_reads: Arc<Semaphore>,
    store_reads: AtomicU64,
    reads_in_flight: AtomicUsize,
    peak_reads: AtomicUsize,
}

/// The key id as a number: 16 hex digits, so case does not make two ids of one key.
fn parse_key_id(key_id: &str) -> Option<u64> {
    u64::from_str_radix(key_id, 16).ok()
}

impl Authenticator {
    /// An authenticator; `admin_key` is `SAFEGUARD_ADMIN_KEY`, if set.
    pub fn new(store: Arc<dyn Store>, admin_key: Option<&str>, dev: bool) -> Authenticator {
        Authenticator::with_unknown_cap(store, admin_key, dev, MAX_UNKNOWN_KEYS)
    }

    fn with_unknown_cap(
        store: Arc<dyn Store>,
        admin_key: Option<&str>,
        dev: bool,
        cap: usize,
    ) -> Authenticator {
        Authenticator {
            store,
            admin_key_sha256: admin_key.map(sha256),
            dev,
            cache: Mutex::new(Cache {
                known: HashMap::new(),
                unknown: UnknownIds::new(cap),
                generation: 0,
            }),
            unknown_reads: Arc::new(Semaphore::new(MAX_UNKNOWN_KEY_READS)),
            store_reads: AtomicU64::new(0),
            reads_in_flight: AtomicUsize::new(0),
            peak_reads: AtomicUsize::new(0),
        }
    }

    /// Whether requests need a key at all.
    pub fn enabled(&self) -> bool {
        !self.dev
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        // The cache is only ever replaced entry by entry, so a panic elsewhere while the lock
        // was held cannot leave it inconsistent; a poisoned lock is still usable.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets cached keys (after a revocation).
    pub fn invalidate(&self) {
        let mut c = self.cache();
        c.known.clear();
        c.unknown.clear();
        c.generation += 1;
    }

    /// Counters of the key checks.
    pub fn stats(&self) -> AuthStats {
        AuthStats {
            store_reads: self.store_reads.load(Ordering::Relaxed),
            unknown_cached: self.cache().unknown.at.len(),
            peak_concurrent_reads: self.peak_reads.load(Ordering::Relaxed),
        }
    }

    /// A permit to read an unknown key id from the store; hold it until the read ends (move
    /// it into the blocking closure, so a cancelled request keeps holding it).
    pub async fn unknown_key_permit(&self) -> OwnedSemaphorePermit {
        // The semaphore is never closed, so acquiring can only wait, not fail.
        self.unknown_reads
            .clone()
            .acquire_owned()
            .await
            .expect("the unknown-key semaphore is never closed")
    }

    /// Checks an `Authorization` header value for a scope from the cache alone: never
    /// blocks on the store, so it runs inline on the async threads.
    pub fn check_cached(&self, header: Option<&str>, need: Scope) -> Cached {
        match self.presented(header) {
            Err(d) => Cached::Decided(Err(d)),
            Ok(Presented::Admin) => Cached::Decided(Ok(())),
            Ok(Presented::Key { id, sha }) => {
                let now = Instant::now();
                let c = self.cache();
                if let Some(k) = c.known.get(&id) {
                    if k.fresh(now) {
                        return Cached::Decided(k.verdict(&sha, need));
                    }
                    return Cached::Miss { unknown: false };
                }
                if c.unknown.contains(id, now) {
                    return Cached::Decided(Err(Denied::Invalid));
                }
                Cached::Miss { unknown: true }
            }
        }
    }

    /// Checks an `Authorization` header value for a scope. Blocking: reads the store when the
    /// cache cannot decide.
    pub fn check(&self, header: Option<&str>, need: Scope) -> Result<(), Denied> {
        if let Cached::Decided(v) = self.check_cached(header, need) {
            return v;
        }
        match self.presented(header)? {
            Presented::Admin => Ok(()),
            Presented::Key { id, sha } => self.read(id)?.verdict(&sha, need),
        }
    }

    fn presented(&self, header: Option<&str>) -> Result<Presented, Denied> {
        if self.dev {
            return Ok(Presented::Admin);
        }
        let key = header
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(Denied::Missing)?;
        let sha = sha256(key);
        if let Some(admin) = &self.admin_key_sha256 {
            if bool::from(sha.ct_eq(admin)) {
                return Ok(Presented::Admin);
            }
        }
        let id = key_id_of(key)
            .and_then(parse_key_id)
            .ok_or(Denied::Invalid)?;
        Ok(Presented::Key { id, sha })
    }

    /// Reads a key from the store and caches what it found (the key, or that it is unknown).
    fn read(&self, id: u64) -> Result<KnownKey, Denied> {
        let (started, generation) = (Instant::now(), self.cache().generation);
        let in_flight = self.reads_in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_reads.fetch_max(in_flight, Ordering::Relaxed);
        self.store_reads.fetch_add(1, Ordering::Relaxed);
        // Stored ids are lower-case hex; the canonical form finds the key whatever case the
        // client sent.
        let rec = self.store.api_key(&format!("{id:016x}"));
        self.reads_in_flight.fetch_sub(1, Ordering::Relaxed);
        // A store failure is not the caller's fault, but failing closed is the only safe
        // answer; nothing is cached, so the next request asks again.
        let rec = match rec {
            Ok(Some(r)) => r,
            Ok(None) => {
                let mut c = self.cache();
                if c.generation == generation {
                    c.known.remove(&id);
                    c.unknown.insert(id, started);
                }
                return Err(Denied::Invalid);
            }
            Err(e) => {
                tracing::error!(request_id = %crate::error::request_id(), error = %e, "api key lookup failed");
                return Err(Denied::Invalid);
            }
        };
        let mut secret_sha256 = [0u8; 32];
        if hex::decode_to_slice(&rec.secret_sha256, &mut secret_sha256).is_err() {
            tracing::error!(key_id = %rec.key_id, "stored key hash is not hex");
            return Err(Denied::Invalid);
        }
        let key = KnownKey {
            secret_sha256,
            scopes: rec
                .scopes
                .iter()
                .filter_map(|s| Scope::parse(s))
                .fold(0, |m, s| m | s.bit()),
            revoked: rec.revoked_at.is_some(),
            fetched: started,
        };
        let mut c = self.cache();
        if c.generation == generation {
            c.unknown.at.remove(&id);
            // Of two reads racing, the one that started later wins, and a revocation is
            // never undone by an older read.
            let keep_old = c
                .known
                .get(&id)
                .is_some_and(|old| old.revoked || old.fetched > key.fetched);
            if !keep_old {
                c.known.insert(id, key);
            }
        }
        Ok(key)
    }
}

/// Who a well-formed `Authorization` header says the caller is.
enum Presented {
    /// The bootstrap admin key (or dev mode).
    Admin,
    /// A stored key's id, and the SHA-256 of the whole key presented.
    Key { id: u64, sha: [u8; 32] },
}

#[cfg(test)]
mod tests {
    use super::*;
    use safeguard_store::SqliteStore;

    fn auth(cap: usize) -> (Authenticator, Arc<dyn Store>) {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
        (
            Authenticator::with_unknown_cap(store.clone(), None, false, cap),
            store,
        )
    }

    fn bearer(key: &str) -> String {
        format!("Bearer {key}")
    }

    fn bogus(id: u64) -> String {
        bearer(&format!("sg_{id:016x}_{}", "ab".repeat(32)))
    }

    #[test]
    fn unknown_ids_are_remembered_and_cost_one_read() {
        let (a, _) = auth(MAX_UNKNOWN_KEYS);
        let h = bogus(7);
        assert_eq!(
            a.check_cached(Some(&h), Scope::Match),
            Cached::Miss { unknown: true }
        );
        for _ in 0..100 {
            assert_eq!(a.check(Some(&h), Scope::Match), Err(Denied::Invalid));
        }
        assert_eq!(a.stats().store_reads, 1);
        assert_eq!(a.stats().unknown_cached, 1);
        // Decided from the cache alone, so no blocking task is needed.
        assert_eq!(
            a.check_cached(Some(&h), Scope::Match),
            Cached::Decided(Err(Denied::Invalid))
        );
    }

    #[test]
    fn unknown_ids_are_forgotten_after_the_ttl() {
        let mut ids = UnknownIds::new(8);
        let t0 = Instant::now();
        ids.insert(7, t0);
        assert!(ids.contains(7, t0));
        assert!(ids.contains(7, t0 + UNKNOWN_KEY_TTL - Duration::from_millis(1)));
        assert!(
            !ids.contains(7, t0 + UNKNOWN_KEY_TTL),
            "remembered past the TTL"
        );
        assert!(!ids.contains(8, t0), "an id never inserted");
        // Found unknown again later: remembered from then.
        let t1 = t0 + UNKNOWN_KEY_TTL;
        ids.insert(7, t1);
        assert!(ids.contains(7, t1 + UNKNOWN_KEY_TTL - Duration::from_millis(1)));
    }

    #[test]
    fn an_unknown_id_past_the_ttl_is_read_again() {
        let (a, _) = auth(MAX_UNKNOWN_KEYS);
        let h = bogus(9);
        assert_eq!(a.check(Some(&h), Scope::Match), Err(Denied::Invalid));
        assert_eq!(a.stats().store_reads, 1);
        // Ages the remembered entry by the TTL (the map's instant is when it was found). Only
        // `at` is rewritten, not `order`: `contains` reads `at` alone, and the stale `order`
        // entry matters only to eviction, which this test never reaches.
        {
            let mut c = a.cache();
            let found = *c.unknown.at.get(&9).unwrap();
            let Some(old) = found.checked_sub(UNKNOWN_KEY_TTL) else {
                // An Instant cannot go before the clock's origin (the boot, on Linux): a
                // machine up for under a minute cannot run this half of the test.
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "uptime under the TTL"
                );
                eprintln!("skipped: the monotonic clock is younger than {UNKNOWN_KEY_TTL:?}");
                return;
            };
            c.unknown.at.insert(9, old);
        }
        assert_eq!(
            a.check_cached(Some(&h), Scope::Match),
            Cached::Miss { unknown: true }
        );
        assert_eq!(a.check(Some(&h), Scope::Match), Err(Denied::Invalid));
        assert_eq!(
            a.stats().store_reads,
            2,
            "an expired unknown id is read again"
        );
    }

    #[test]
    fn unknown_ids_are_bounded_oldest_first() {
        let (a, _) = auth(8);
        for id in 0..20u64 {
            assert_eq!(a.check(Some(&bogus(id)), Scope::Hash), Err(Denied::Invalid));
        }
        assert_eq!(a.stats().unknown_cached, 8);
        assert_eq!(a.stats().store_reads, 20);
        // The oldest were forgotten; the newest are remembered.
        assert_eq!(
            a.check_cached(Some(&bogus(0)), Scope::Hash),
            Cached::Miss { unknown: true }
        );
        assert_eq!(
            a.check_cached(Some(&bogus(19)), Scope::Hash),
            Cached::Decided(Err(Denied::Invalid))
        );
        // Forgetting and re-learning the same ids keeps both structures within the bound.
        for round in 0..50u64 {
            let id = round % 10;
            let _ = a.check(Some(&bogus(id)), Scope::Hash);
            let c = a.cache();
            assert!(c.unknown.at.len() <= 8 && c.unknown.order.len() <= 8);
        }
    }

    #[test]
    fn a_known_key_is_decided_from_the_cache() {
        let (a, store) = auth(MAX_UNKNOWN_KEYS);
        let k = create_key(store.as_ref(), "t", &[Scope::Match]).unwrap();
        let h = bearer(&k.key);
        assert_eq!(
            a.check_cached(Some(&h), Scope::Match),
            Cached::Miss { unknown: true }
        );
        assert_eq!(a.check(Some(&h), Scope::Match), Ok(()));
        let reads = a.stats().store_reads;
        assert_eq!(
            a.check_cached(Some(&h), Scope::Match),
            Cached::Decided(Ok(()))
        );
        assert_eq!(
            a.check_cached(Some(&h), Scope::Curate),
            Cached::Decided(Err(Denied::Forbidden))
        );
        // Same id, wrong secret: refused from the cache too.
        let wrong = bearer(&format!("{}{}", &k.key[..20], "0".repeat(k.key.len() - 20)));
        assert_eq!(
            a.check_cached(Some(&wrong), Scope::Match),
            Cached::Decided(Err(Denied::Invalid))
        );
        assert_eq!(a.stats().store_reads, reads);
        // After the TTL the entry must be read again.
        std::thread::sleep(KEY_CACHE_TTL + Duration::from_millis(20));
        assert_eq!(
            a.check_cached(Some(&h), Scope::Match),
            Cached::Miss { unknown: false }
        );
    }

    #[test]
    fn revocation_by_another_handle_is_seen_after_the_ttl_and_is_final() {
        let (a, store) = auth(MAX_UNKNOWN_KEYS);
        let k = create_key(store.as_ref(), "t", &[Scope::Admin]).unwrap();
        let h = bearer(&k.key);
        assert_eq!(a.check(Some(&h), Scope::Curate), Ok(()));
        // Not through `invalidate`: as if another process revoked it.
        store.revoke_api_key(&k.key_id).unwrap();
        std::thread::sleep(KEY_CACHE_TTL + Duration::from_millis(20));
        assert_eq!(a.check(Some(&h), Scope::Curate), Err(Denied::Invalid));
        // A revoked entry does not expire: later checks cost no read.
        let reads = a.stats().store_reads;
        std::thread::sleep(KEY_CACHE_TTL + Duration::from_millis(20));
        assert_eq!(
            a.check_cached(Some(&h), Scope::Curate),
            Cached::Decided(Err(Denied::Invalid))
        );
        assert_eq!(a.stats().store_reads, reads);
    }

    #[test]
    fn an_upper_case_id_does_not_poison_the_real_key() {
        let (a, store) = auth(MAX_UNKNOWN_KEYS);
        let k = create_key(store.as_ref(), "t", &[Scope::Hash]).unwrap();
        let upper = format!("sg_{}_{}", k.key_id.to_ascii_uppercase(), &k.key[20..]);
        assert_ne!(upper, k.key);
        // Same id in another case: the real record is read, and the secret hash differs.
        assert_eq!(
            a.check(Some(&bearer(&upper)), Scope::Hash),
            Err(Denied::Invalid)
        );
        assert_eq!(a.check(Some(&bearer(&k.key)), Scope::Hash), Ok(()));
        assert_eq!(a.stats().unknown_cached, 0);
    }

    #[test]
    fn missing_and_malformed_headers() {
        let (a, _) = auth(MAX_UNKNOWN_KEYS);
        assert_eq!(
            a.check_cached(None, Scope::Hash),
            Cached::Decided(Err(Denied::Missing))
        );
        assert_eq!(
            a.check_cached(Some("Basic x"), Scope::Hash),
            Cached::Decided(Err(Denied::Missing))
        );
        assert_eq!(
            a.check_cached(Some("Bearer not-a-key"), Scope::Hash),
            Cached::Decided(Err(Denied::Invalid))
        );
        assert_eq!(a.stats().store_reads, 0);
    }

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
