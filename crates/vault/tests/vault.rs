//! The vault's suite, run against every backend: the filesystem, and S3 on a real local S3
//! server (moto) started by this test binary.

mod moto;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use md5::Md5;
use safeguard_vault::retention::{RetentionFacts, RetentionPolicy, DAY_SECS};
use safeguard_vault::{
    BlobKey, BlobStore, Error, FsBlobStore, MasterKey, S3BlobStore, S3Config, SealedObject, Vault,
    BLOB_HEADER_LEN,
};
use sha2::{Digest, Sha256};

type Case = fn(Arc<dyn BlobStore>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        /// Every case, by name; each gets a fresh, empty store.
        const SUITE: &[(&str, Case)] = &[$((stringify!($name), |s| Box::pin($name(s)))),*];
    };
}

suite!(
    round_trip,
    wrong_master_key_is_refused,
    flipped_ciphertext_byte_is_detected,
    flipped_wrapped_key_byte_is_detected,
    object_id_swap_is_detected,
    destroy_removes_the_blob,
    expiry_destroys_and_records_and_a_legal_hold_prevents_it,
    blob_store_contract,
    records_cannot_point_outside_the_store,
);

/// A benign, patterned plaintext of `len` bytes (a stand-in for an image), different per
/// `seed`.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 131 + usize::from(seed) * 7) % 253) as u8)
        .collect()
}

fn vault(store: &Arc<dyn BlobStore>) -> Vault {
    Vault::new(store.clone(), MasterKey::generate().unwrap())
}

/// Replaces the blob of `obj` with `f` applied to its bytes (stores never overwrite, so:
/// delete, then put).
async fn bend_blob(store: &Arc<dyn BlobStore>, obj: &SealedObject, f: impl FnOnce(&mut Vec<u8>)) {
    let key = BlobKey::parse(&obj.blob_key).unwrap();
    let mut bytes = store.get(&key).await.unwrap().to_vec();
    f(&mut bytes);
    store.delete(&key).await.unwrap();
    store.put(&key, Bytes::from(bytes)).await.unwrap();
}

async fn round_trip(store: Arc<dyn BlobStore>) {
    let v = vault(&store);
    for (i, len) in [0usize, 1, 1000, 3 * 1024 * 1024 + 7]
        .into_iter()
        .enumerate()
    {
        let pt = pattern(len, i as u8);
        let id = format!("case-7:item-{i}");
        let obj = v.put(&id, &pt).await.unwrap();
        assert_eq!(obj.object_id, id);
        assert_eq!(obj.size, len as u64);
        assert_eq!(obj.sha256, hex::encode(Sha256::digest(&pt)));
        assert_eq!(obj.md5, hex::encode(Md5::digest(&pt)));
        assert_eq!(obj.key_fingerprint, v.key_fingerprint());
        // What the store holds is ciphertext: the right length, the magic, no plaintext run.
        let key = BlobKey::parse(&obj.blob_key).unwrap();
        assert!(store.exists(&key).await.unwrap());
        let raw = store.get(&key).await.unwrap();
        assert_eq!(raw.len(), BLOB_HEADER_LEN + len + 16);
        assert_eq!(&raw[..4], b"SGVB");
        if len >= 64 {
            assert!(!raw.windows(64).any(|w| w == &pt[..64]));
        }
        assert_eq!(v.get(&obj).await.unwrap(), pt);
        // The record survives a trip through a database (JSON here) and still opens.
        let back: SealedObject =
            serde_json::from_str(&serde_json::to_string(&obj).unwrap()).unwrap();
        assert_eq!(v.get(&back).await.unwrap(), pt);
    }
    // The same id again is a new, independent object; the first still opens.
    let a = v.put("dup", b"first").await.unwrap();
    let b = v.put("dup", b"second").await.unwrap();
    assert_ne!(a.blob_key, b.blob_key);
    assert_eq!(v.get(&a).await.unwrap(), b"first");
    assert_eq!(v.get(&b).await.unwrap(), b"second");
}

async fn wrong_master_key_is_refused(store: Arc<dyn BlobStore>) {
    let v = vault(&store);
    let obj = v.put("obj-1", &pattern(5000, 1)).await.unwrap();
    let other = vault(&store);
    let err = other.get(&obj).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(&err, Error::WrongMasterKey { sealed_with, current, .. }
            if *sealed_with == v.key_fingerprint() && *current == other.key_fingerprint()),
        "{err:?}"
    );
    assert!(
        msg.contains("obj-1") && msg.contains("another master key"),
        "{msg}"
    );
    // The right key still opens it.
    assert_eq!(v.get(&obj).await.unwrap(), pattern(5000, 1));
}

async fn flipped_ciphertext_byte_is_detected(store: Arc<dyn BlobStore>) {
    let v = vault(&store);
    let pt = pattern(20_000, 2);
    let obj = v.put("obj-ct", &pt).await.unwrap();
    bend_blob(&store, &obj, |b| b[BLOB_HEADER_LEN + 12_345] ^= 0x04).await;
    let err = v.get(&obj).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Tampered {
                what: "ciphertext",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("altered"), "{err}");
    // Flipped back, it opens: the failure was the byte, nothing else.
    bend_blob(&store, &obj, |b| b[BLOB_HEADER_LEN + 12_345] ^= 0x04).await;
    assert_eq!(v.get(&obj).await.unwrap(), pt);
    // A truncated blob, and a blob whose magic is gone.
    bend_blob(&store, &obj, |b| b.truncate(b.len() - 1)).await;
    assert!(matches!(v.get(&obj).await, Err(Error::Tampered { .. })));
    bend_blob(&store, &obj, |b| b[0] = b'X').await;
    assert!(matches!(v.get(&obj).await, Err(Error::Corrupt { .. })));
}

async fn flipped_wrapped_key_byte_is_detected(store: Arc<dyn BlobStore>) {
    let v = vault(&store);
    let obj = v.put("obj-wk", b"a benign test payload").await.unwrap();
    for i in 0..obj.wrapped_key.len() {
        let mut bent = obj.clone();
        bent.wrapped_key[i] ^= 0x10;
        let err = v.get(&bent).await.unwrap_err();
        let ok = match i {
            // The version byte: a format this build does not know.
            0 => matches!(err, Error::Corrupt { .. }),
            _ => matches!(
                err,
                Error::Tampered {
                    what: "wrapped data key",
                    ..
                }
            ),
        };
        assert!(ok, "byte {i}: {err:?}");
    }
    assert_eq!(v.get(&obj).await.unwrap(), b"a benign test payload");
}

async fn object_id_swap_is_detected(store: Arc<dyn BlobStore>) {
    let v = vault(&store);
    let a = v.put("item-a", b"payload one").await.unwrap();
    let b = v.put("item-b", b"payload one").await.unwrap();
    // A's record relabelled as B (same key fingerprint, digests, size).
    let relabelled = SealedObject {
        object_id: b.object_id.clone(),
        ..a.clone()
    };
    assert!(matches!(
        v.get(&relabelled).await,
        Err(Error::Tampered {
            what: "wrapped data key",
            ..
        })
    ));
    // A's record pointing at B's blob: B's ciphertext under A's data key.
    let repointed = SealedObject {
        blob_key: b.blob_key.clone(),
        ..a.clone()
    };
    assert!(matches!(
        v.get(&repointed).await,
        Err(Error::Tampered {
            what: "ciphertext",
            ..
        })
    ));
    // B's wrapped key in A's record.
    let swapped = SealedObject {
        wrapped_key: b.wrapped_key.clone(),
        ..a.clone()
    };
    assert!(matches!(
        v.get(&swapped).await,
        Err(Error::Tampered {
            what: "wrapped data key",
            ..
        })
    ));
    assert_eq!(v.get(&a).await.unwrap(), b"payload one");
    assert_eq!(v.get(&b).await.unwrap(), b"payload one");
}

async fn destroy_removes_the_blob(store: Arc<dyn BlobStore>) {
    let v = vault(&store);
    let obj = v.put("obj-gone", &pattern(4096, 3)).await.unwrap();
    let key = BlobKey::parse(&obj.blob_key).unwrap();
    let backup = store.get(&key).await.unwrap();
    assert!(store.exists(&key).await.unwrap());
    v.destroy(&obj).await.unwrap();
    assert!(!store.exists(&key).await.unwrap());
    assert!(matches!(v.get(&obj).await, Err(Error::NotFound { key: k }) if k == obj.blob_key));
    // Idempotent: a sweeper that crashed after the delete can run again.
    v.destroy(&obj).await.unwrap();
    // Crypto-shredding: a backup of the blob restored after the record (its wrapped key) is
    // gone opens under nothing the caller still has.
    store.put(&key, backup).await.unwrap();
    let without_key = SealedObject {
        wrapped_key: Vec::new(),
        ..obj.clone()
    };
    assert!(matches!(
        v.get(&without_key).await,
        Err(Error::Corrupt { .. })
    ));
    // (With the record it would still open: destroying the record is the deletion.)
    assert_eq!(v.get(&obj).await.unwrap(), pattern(4096, 3));
}

/// A caller's record of one object, in miniature.
struct Record {
    obj: SealedObject,
    facts: RetentionFacts,
}

/// The caller's sweeper in miniature: asks the policy which records are due, destroys their
/// objects, drops their records and logs each deletion (object id, blob key, time).
async fn sweep(
    v: &Vault,
    policy: &RetentionPolicy,
    now: i64,
    records: Vec<Record>,
    log: &mut Vec<(String, String, i64)>,
) -> Vec<Record> {
    let (due, kept): (Vec<_>, Vec<_>) = records
        .into_iter()
        .partition(|r| policy.is_due(&r.facts, now));
    for r in due {
        v.destroy(&r.obj).await.unwrap();
        log.push((r.obj.object_id.clone(), r.obj.blob_key.clone(), now));
    }
    kept
}

async fn expiry_destroys_and_records_and_a_legal_hold_prevents_it(store: Arc<dyn BlobStore>) {
    let v = vault(&store);
    let policy = RetentionPolicy::default();
    let t0 = 1_800_000_000;
    let mut records = Vec::new();
    for (id, reported_at, legal_hold) in [
        ("unreported", None, false),
        ("reported", Some(t0 + DAY_SECS), false),
        ("held", None, true),
    ] {
        records.push(Record {
            obj: v.put(id, id.as_bytes()).await.unwrap(),
            facts: RetentionFacts {
                stored_at: t0,
                reported_at,
                legal_hold,
            },
        });
    }
    let mut log = Vec::new();
    // Day 89: nothing is due.
    let records = sweep(&v, &policy, t0 + 89 * DAY_SECS, records, &mut log).await;
    assert!(log.is_empty());
    assert_eq!(records.len(), 3);
    // Day 91: the unreported item goes; the reported and the held stay.
    let records = sweep(&v, &policy, t0 + 91 * DAY_SECS, records, &mut log).await;
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].0.as_str(), log[0].2),
        ("unreported", t0 + 91 * DAY_SECS)
    );
    // Ten years on: the reported item goes too (a year after its report); the held one stays
    // and still opens.
    let records = sweep(&v, &policy, t0 + 3650 * DAY_SECS, records, &mut log).await;
    let ids: Vec<&str> = log.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(ids, ["unreported", "reported"]);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].obj.object_id, "held");
    assert_eq!(v.get(&records[0].obj).await.unwrap(), b"held");
    // The destroyed blobs are gone from the store itself, not merely forgotten.
    for (_, blob_key, _) in &log {
        assert!(!store
            .exists(&BlobKey::parse(blob_key).unwrap())
            .await
            .unwrap());
    }
    let held = BlobKey::parse(&records[0].obj.blob_key).unwrap();
    assert!(store.exists(&held).await.unwrap());
}

async fn blob_store_contract(store: Arc<dyn BlobStore>) {
    let key = BlobKey::parse("contract/a-1").unwrap();
    let missing = BlobKey::parse("contract/never").unwrap();
    assert!(!store.exists(&key).await.unwrap());
    store.put(&key, Bytes::from_static(b"one")).await.unwrap();
    assert!(store.exists(&key).await.unwrap());
    assert_eq!(&store.get(&key).await.unwrap()[..], b"one");
    // Never overwritten.
    let err = store
        .put(&key, Bytes::from_static(b"two"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
    assert_eq!(&store.get(&key).await.unwrap()[..], b"one");
    // Missing: NotFound on get, false on exists, and deleting it succeeds.
    assert!(matches!(
        store.get(&missing).await,
        Err(Error::NotFound { .. })
    ));
    assert!(!store.exists(&missing).await.unwrap());
    store.delete(&missing).await.unwrap();
    store.delete(&key).await.unwrap();
    assert!(!store.exists(&key).await.unwrap());
    // An empty blob is a blob.
    store.put(&key, Bytes::new()).await.unwrap();
    assert!(store.exists(&key).await.unwrap());
    assert!(store.get(&key).await.unwrap().is_empty());
}

async fn records_cannot_point_outside_the_store(store: Arc<dyn BlobStore>) {
    let v = vault(&store);
    let obj = v.put("obj-path", b"x").await.unwrap();
    for bad in ["../../etc/passwd", "/etc/passwd", "a/../../b", "", ".tmp-x"] {
        let evil = SealedObject {
            blob_key: bad.into(),
            ..obj.clone()
        };
        assert!(
            matches!(v.get(&evil).await, Err(Error::InvalidBlobKey { .. })),
            "{bad:?}"
        );
        assert!(
            matches!(v.destroy(&evil).await, Err(Error::InvalidBlobKey { .. })),
            "{bad:?}"
        );
    }
    for bad in ["", "a/b", "../x"] {
        assert!(
            matches!(v.put(bad, b"x").await, Err(Error::InvalidObjectId { .. })),
            "{bad:?}"
        );
    }
}

/// Runs every case on a fresh store from `make` (given the case's index and name).
async fn run_suite(backend: &str, make: impl Fn(usize, &str) -> Arc<dyn BlobStore>) {
    for (i, (name, case)) in SUITE.iter().enumerate() {
        eprintln!("{backend}: {name}");
        case(make(i, name)).await;
    }
    eprintln!("{backend}: {} cases passed", SUITE.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_backend_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    run_suite("fs", |_, name| {
        Arc::new(FsBlobStore::new(dir.path().join(name)).unwrap())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_backend_passes_the_suite() {
    let Some(moto) = moto::Moto::start() else {
        return;
    };
    run_suite("s3", |i, name| {
        // A bucket per case; every other case under a key prefix, so both layouts are run.
        let bucket = format!("vault-{}", name.replace('_', "-"));
        moto.create_bucket(&bucket);
        let mut cfg = S3Config::new(Some(moto.endpoint()), bucket);
        cfg.access_key_id = Some("testing".into());
        cfg.secret_access_key = Some("testing".into());
        cfg.allow_http = true;
        if i % 2 == 1 {
            cfg.prefix = Some("instance-1/vault".into());
        }
        Arc::new(S3BlobStore::new(&cfg).unwrap())
    })
    .await;
    // On the same server (one moto per test binary).
    s3_objects_land_in_the_bucket_as_ciphertext(&moto).await;
}

/// The S3 backend really writes to the server: moto's own bucket listing (fetched raw, not
/// through the client under test) shows the object under the prefix at the blob's size, and
/// the bytes there are ciphertext.
async fn s3_objects_land_in_the_bucket_as_ciphertext(moto: &moto::Moto) {
    moto.create_bucket("evidence");
    let mut cfg = S3Config::new(Some(moto.endpoint()), "evidence");
    cfg.access_key_id = Some("testing".into());
    cfg.secret_access_key = Some("testing".into());
    cfg.allow_http = true;
    cfg.prefix = Some("prod".into());
    let store: Arc<dyn BlobStore> = Arc::new(S3BlobStore::new(&cfg).unwrap());
    let v = vault(&store);
    let pt = pattern(100_000, 9);
    let obj = v.put("item-1", &pt).await.unwrap();
    let listing = |moto: &moto::Moto| {
        let (status, body) = moto.http("GET", "/evidence?list-type=2", &[]).unwrap();
        assert_eq!(status, 200);
        String::from_utf8(body).unwrap()
    };
    let list = listing(moto);
    let entry = format!("<Key>prod/{}</Key>", obj.blob_key);
    assert!(list.contains(&entry), "{list}");
    assert!(
        list.contains(&format!("<Size>{}</Size>", BLOB_HEADER_LEN + pt.len() + 16)),
        "{list}"
    );
    assert_eq!(list.matches("<Key>").count(), 1, "{list}");
    // The bytes at that full key, read with a prefix-less client: ciphertext.
    let bare = S3Config {
        prefix: None,
        ..cfg.clone()
    };
    let raw = S3BlobStore::new(&bare)
        .unwrap()
        .get(&BlobKey::parse(&format!("prod/{}", obj.blob_key)).unwrap())
        .await
        .unwrap();
    assert_eq!(&raw[..4], b"SGVB");
    assert!(!raw.windows(64).any(|w| w == &pt[..64]));
    // Destroyed: gone from the server's listing.
    v.destroy(&obj).await.unwrap();
    let list = listing(moto);
    assert!(!list.contains(&entry), "{list}");
    // A bucket that does not exist is a backend error naming the bucket, not a panic.
    let mut missing = cfg.clone();
    missing.bucket = "no-such-bucket".into();
    let v2 = Vault::new(
        Arc::new(S3BlobStore::new(&missing).unwrap()),
        MasterKey::generate().unwrap(),
    );
    let err = v2.put("item-2", b"x").await.unwrap_err();
    assert!(
        matches!(&err, Error::Backend { key, .. } if key.contains("no-such-bucket")),
        "{err:?}"
    );
}
