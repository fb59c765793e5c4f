//! The audit log as the engine keeps it: entries appended to the store, a Merkle tree
//! (RFC 6962, `safeguard-audit`) that follows the store's log, signed tree heads, proofs and
//! exports.
//!
//! The store assigns sequence numbers inside its appending transaction, so several processes
//! on one PostgreSQL database append to one log. Each process's tree follows the stored leaf
//! hashes ([`Auditor::sync`]) before it answers with a root or a proof, so every process
//! gives the same answers for the same size.
//!
//! The signing key is derived from the instance's master key (`MasterKey::derive`), so
//! every process that can open the vault signs with the same key and no second secret is
//! stored. Its public half is what a verifier needs (`safeguard audit key`).

use std::io::Write;
use std::sync::{Arc, Mutex};

use safeguard_audit::{Entry, Hash, SignedTreeHead, SigningKey, Tree, TreeHead, VerifyingKey};
use safeguard_store::audit::{NewAuditEntry, StoredTreeHead};
use safeguard_store::Store;

use crate::sources::now_ms;
use crate::Error;

pub use safeguard_audit::Action;

/// The purpose string the audit signing key is derived under.
pub const SIGNING_KEY_PURPOSE: &[u8] = b"audit-signing-v1";
/// Entries or leaf hashes read per store call (startup, sync, export): 100,000 leaf hashes
/// are 3.2 MB.
pub const PAGE: usize = 100_000;

/// The log's signing key: derived from the instance's master key under
/// [`SIGNING_KEY_PURPOSE`], so every process with the key signs alike.
pub fn signing_key(master: &safeguard_seal::MasterKey) -> SigningKey {
    SigningKey::from_bytes(&master.derive(SIGNING_KEY_PURPOSE))
}

/// Appends to, proves and signs the audit log of one store.
pub struct Auditor {
    store: Arc<dyn Store>,
    key: SigningKey,
    /// The tree of the stored leaf hashes, up to the size last synced. Guarded so appends
    /// and syncs in one process extend it in order.
    tree: Mutex<Tree>,
}

impl std::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auditor")
            .field("key", &self.key.verifying_key())
            .finish_non_exhaustive()
    }
}

fn audit_err(e: safeguard_audit::Error) -> Error {
    match e {
        safeguard_audit::Error::InvalidEntry { .. } | safeguard_audit::Error::OutOfRange { .. } => {
            Error::Invalid(e.to_string())
        }
        other => Error::Store(safeguard_store::Error::Corrupt(format!(
            "audit log: {other}"
        ))),
    }
}

impl Auditor {
    /// An auditor over `store`'s log, signing with `key`; reads the stored leaf hashes.
    pub fn new(store: Arc<dyn Store>, key: SigningKey) -> Result<Auditor, Error> {
        let a = Auditor {
            store,
            key,
            tree: Mutex::new(Tree::new()),
        };
        a.sync()?;
        Ok(a)
    }

    /// The key a verifier needs.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    fn tree(&self) -> std::sync::MutexGuard<'_, Tree> {
        // A panic while holding the lock leaves a tree that is a prefix of the stored log
        // (push is the only change); the next sync completes it, so the poison is ignored.
        self.tree.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Brings the tree up to the store's log (entries other processes appended). Returns
    /// the size.
    pub fn sync(&self) -> Result<u64, Error> {
        let mut tree = self.tree();
        loop {
            let hashes = self.store.audit_leaf_hashes(tree.size(), PAGE)?;
            let n = hashes.len();
            for h in hashes {
                tree.push(h);
            }
            if n < PAGE {
                return Ok(tree.size());
            }
        }
    }

    /// Appends one entry; gives its sequence number. `object` and `detail` are ids and short
    /// text, never media or full hashes of unconfirmed content (the audit crate refuses a
    /// long hex run in `detail`).
    pub fn record(
        &self,
        actor: &str,
        action: Action,
        object: &str,
        detail: &str,
    ) -> Result<u64, Error> {
        let e = NewAuditEntry {
            at: now_ms(),
            actor: actor.into(),
            action: action.as_str().into(),
            object: object.into(),
            detail: detail.into(),
        };
        // Validated before the store's transaction, so the leaf closure cannot fail.
        entry_of(0, &e).map_err(audit_err)?;
        let stored = self.store.audit_append(&[e], &|seq, e| {
            entry_of(seq, e)
                .map(|x| x.leaf_hash())
                .expect("validated above; the sequence number is not validated")
        })?;
        self.sync()?;
        Ok(stored.first().map(|r| r.seq).unwrap_or_default())
    }

    /// Signs a head over the whole log as it is now, stores it and returns it.
    pub fn sign_head(&self) -> Result<SignedTreeHead, Error> {
        self.sync()?;
        let sth = {
            let tree = self.tree();
            TreeHead {
                size: tree.size(),
                root: tree.current_root(),
                timestamp_ms: now_ms(),
            }
            .sign(&self.key)
        };
        self.store.put_tree_head(&StoredTreeHead {
            size: sth.head.size,
            root: sth.head.root,
            timestamp: sth.head.timestamp_ms,
            signature: sth.signature.to_vec(),
        })?;
        Ok(sth)
    }

    /// Signs a head if the log grew since the newest stored one (the periodic heads).
    pub fn sign_head_if_grown(&self) -> Result<Option<SignedTreeHead>, Error> {
        let size = self.sync()?;
        let last = self.store.tree_heads(1)?;
        if last.first().is_some_and(|h| h.size >= size) {
            return Ok(None);
        }
        self.sign_head().map(Some)
    }

    /// The newest stored head, if any.
    pub fn latest_head(&self) -> Result<Option<SignedTreeHead>, Error> {
        self.store
            .tree_heads(1)?
            .first()
            .map(stored_head)
            .transpose()
    }

    /// The audit path of entry `index` in the tree of `size` entries, with the leaf hash.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<(Hash, Vec<Hash>), Error> {
        self.sync()?;
        let tree = self.tree();
        let leaf = tree.leaf(index).ok_or_else(|| {
            Error::Invalid(format!(
                "entry {index} is not in the log ({} entries)",
                tree.size()
            ))
        })?;
        let proof = tree.inclusion_proof(index, size).map_err(audit_err)?;
        Ok((leaf, proof))
    }

    /// The consistency proof between the trees of `size1` and `size2` entries.
    pub fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Vec<Hash>, Error> {
        self.sync()?;
        self.tree()
            .consistency_proof(size1, size2)
            .map_err(audit_err)
    }

    /// The root of the tree of `size` entries.
    pub fn root(&self, size: u64) -> Result<Hash, Error> {
        self.sync()?;
        self.tree().root(size).map_err(audit_err)
    }

    /// Entries from `from_seq`, at most `limit`, as stored (with their recorded leaf hashes).
    pub fn entries(
        &self,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<safeguard_store::audit::AuditRecord>, Error> {
        Ok(self.store.audit_entries(from_seq, limit)?)
    }

    /// Writes the whole log as an export (`safeguard_audit::verify_export` reads it): every
    /// entry with its recorded leaf hash, every stored head in place, and a fresh head over
    /// everything at the end. Returns that head.
    pub fn export<W: Write>(&self, out: W) -> Result<SignedTreeHead, Error> {
        let last = self.sign_head()?;
        let mut heads: Vec<SignedTreeHead> = self
            .store
            .tree_heads(usize::MAX)?
            .iter()
            .map(stored_head)
            .collect::<Result<_, _>>()?;
        heads.sort_by_key(|h| (h.head.size, h.head.timestamp_ms));
        let heads = heads.into_iter().filter(|h| h.head.size <= last.head.size);
        let mut heads = heads.peekable();
        let mut w = safeguard_audit::ExportWriter::new(out).map_err(audit_err)?;
        while let Some(h) = heads.next_if(|h| h.head.size == 0) {
            w.head(&h).map_err(audit_err)?;
        }
        // Rows are written as stored, whatever they hold: an export of a tampered database
        // must still come out, for the verifier to name what was changed. So heads are
        // placed by the count of lines written, not by the rows' own numbers.
        let mut seq = 0;
        let mut written: u64 = 0;
        'pages: while seq < last.head.size {
            let page = self.store.audit_entries(seq, PAGE)?;
            if page.is_empty() {
                break;
            }
            for r in &page {
                if r.seq >= last.head.size {
                    break 'pages;
                }
                let e = Entry::new(
                    r.seq,
                    r.entry.at,
                    &r.entry.actor,
                    &r.entry.action,
                    &r.entry.object,
                    &r.entry.detail,
                )
                .map_err(audit_err)?;
                w.entry(&e, &r.leaf_hash).map_err(audit_err)?;
                written += 1;
                while let Some(h) = heads.next_if(|h| h.head.size <= written) {
                    w.head(&h).map_err(audit_err)?;
                }
                seq = r.seq + 1;
            }
        }
        w.finish().map_err(audit_err)?;
        Ok(last)
    }
}

fn entry_of(seq: u64, e: &NewAuditEntry) -> Result<Entry, safeguard_audit::Error> {
    Entry::new(seq, e.at, &e.actor, &e.action, &e.object, &e.detail)
}

fn stored_head(h: &StoredTreeHead) -> Result<SignedTreeHead, Error> {
    let signature = <[u8; 64]>::try_from(h.signature.as_slice()).map_err(|_| {
        Error::Store(safeguard_store::Error::Corrupt(format!(
            "tree head of size {} has a {}-byte signature",
            h.size,
            h.signature.len()
        )))
    })?;
    Ok(SignedTreeHead {
        head: TreeHead {
            size: h.size,
            root: h.root,
            timestamp_ms: h.timestamp,
        },
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use safeguard_store::SqliteStore;

    fn auditor(store: Arc<dyn Store>) -> Auditor {
        Auditor::new(store, SigningKey::from_bytes(&[7; 32])).unwrap()
    }

    #[test]
    fn records_prove_sign_and_export_a_log_that_verifies() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
        let a = auditor(store.clone());
        for i in 0..10 {
            let seq = a
                .record(
                    "key:0011223344556677",
                    Action::VaultRead,
                    &format!("obj-{i}"),
                    "read",
                )
                .unwrap();
            assert_eq!(seq, i);
            if i % 4 == 3 {
                a.sign_head().unwrap();
            }
        }
        // A second process on the same store sees the same log.
        let b = auditor(store.clone());
        assert_eq!(b.root(10).unwrap(), a.root(10).unwrap());
        let (leaf, path) = b.inclusion_proof(3, 10).unwrap();
        safeguard_audit::verify_inclusion(&leaf, 3, 10, &path, &a.root(10).unwrap()).unwrap();
        let c = b.consistency_proof(4, 10).unwrap();
        safeguard_audit::verify_consistency(4, 10, &a.root(4).unwrap(), &a.root(10).unwrap(), &c)
            .unwrap();
        let mut out = Vec::new();
        let head = a.export(&mut out).unwrap();
        assert_eq!(head.head.size, 10);
        let log = safeguard_audit::verify_export(out.as_slice(), &a.verifying_key()).unwrap();
        assert_eq!(log.size(), 10);
        assert_eq!(
            log.heads().len(),
            3,
            "two periodic heads and the export's own"
        );
        let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
        assert!(safeguard_audit::verify_export(out.as_slice(), &other).is_err());
        assert!(a.sign_head_if_grown().unwrap().is_none());
        a.record("cli", Action::KeyRevoked, "key:1", "").unwrap();
        assert_eq!(a.sign_head_if_grown().unwrap().unwrap().head.size, 11);
    }

    #[test]
    fn entries_with_hashes_or_control_characters_are_refused() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
        let a = auditor(store.clone());
        let full_hash = "ab".repeat(32);
        assert!(matches!(
            a.record("k", Action::Decision, "case-1", &full_hash),
            Err(Error::Invalid(_))
        ));
        assert!(a.record("k", Action::Decision, "case\n1", "").is_err());
        assert_eq!(store.audit_size().unwrap(), 0);
    }
}
