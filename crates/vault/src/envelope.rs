//! The envelope: sealing one object under a fresh data key, and opening it again. Pure (no
//! I/O), so every tamper case is a unit test.
//!
//! Blob (what the [`crate::BlobStore`] keeps): [`BLOB_MAGIC`], the version byte [`BLOB_V1`],
//! the 24-byte XChaCha20 nonce, then the ciphertext and its 16-byte Poly1305 tag. Associated
//! data: `"safeguard-vault blob v1\0"` followed by the object id.
//!
//! Wrapped key (what the caller's record keeps): the 32-byte data key sealed by
//! [`MasterKey::seal`] (its own version byte, nonce and tag: 73 bytes) with associated data
//! `"safeguard-vault data key v1\0"` followed by the object id.

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use md5::Md5;
use safeguard_seal::{MasterKey, NONCE_LEN, TAG_LEN};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::{random, Error, Result, MAX_OBJECT_ID_LEN, MAX_OBJECT_SIZE};

/// Data key length, bytes (XChaCha20's 256-bit key).
pub const DEK_LEN: usize = 32;
/// First bytes of every blob: names the format to anyone who finds one.
pub const BLOB_MAGIC: [u8; 4] = *b"SGVB";
/// Blob format version written by this build.
pub const BLOB_V1: u8 = 1;
/// Blob header length, bytes: magic, version, nonce.
pub const BLOB_HEADER_LEN: usize = BLOB_MAGIC.len() + 1 + NONCE_LEN;
/// Associated-data prefix of a blob's ciphertext (then the object id). The NUL ends the
/// prefix, so no object id can make one context read as another.
const BLOB_AAD: &[u8] = b"safeguard-vault blob v1\0";
/// Associated-data prefix of a wrapped data key (then the object id). Distinct from
/// [`BLOB_AAD`] and from every context the server seals exchange credentials under.
const DEK_AAD: &[u8] = b"safeguard-vault data key v1\0";

/// What the caller stores in its database for one object: everything needed to read it back
/// except the master key and the ciphertext. Deleting this record (its `wrapped_key`)
/// destroys the object, whatever copies of the blob survive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedObject {
    /// The caller's id for the object; bound into both encryptions.
    pub object_id: String,
    /// Where the ciphertext is in the blob store (random, fanned out).
    pub blob_key: String,
    /// The object's data key, sealed by the master key (opaque bytes).
    pub wrapped_key: Vec<u8>,
    /// Fingerprint of the master key that wrapped the data key, 32 hex digits.
    pub key_fingerprint: String,
    /// SHA-256 of the plaintext, 64 hex digits; checked again on every read.
    pub sha256: String,
    /// MD5 of the plaintext, 32 hex digits (hash lists and NCMEC reports use it); checked
    /// again on every read.
    pub md5: String,
    /// Plaintext size, bytes.
    pub size: u64,
}

/// Checks an object id: 1 to [`MAX_OBJECT_ID_LEN`] bytes of `A-Z a-z 0-9 . _ - :`.
pub(crate) fn validate_object_id(id: &str) -> Result<()> {
    let bad = |reason| Error::InvalidObjectId {
        id: id.chars().take(MAX_OBJECT_ID_LEN).collect(),
        reason,
    };
    if id.is_empty() {
        return Err(bad("empty"));
    }
    if id.len() > MAX_OBJECT_ID_LEN {
        return Err(bad("longer than 200 bytes"));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
    {
        return Err(bad("only A-Z a-z 0-9 . _ - : are allowed"));
    }
    Ok(())
}

/// Checks a plaintext size against [`MAX_OBJECT_SIZE`].
pub(crate) fn check_size(size: usize) -> Result<()> {
    let size = size as u64;
    if size > MAX_OBJECT_SIZE {
        return Err(Error::TooLarge {
            size,
            limit: MAX_OBJECT_SIZE,
        });
    }
    Ok(())
}

fn context(prefix: &[u8], object_id: &str) -> Vec<u8> {
    let mut c = Vec::with_capacity(prefix.len() + object_id.len());
    c.extend_from_slice(prefix);
    c.extend_from_slice(object_id.as_bytes());
    c
}

/// The buffer [`seal`] encrypts in place: room for the header, the plaintext, room for the
/// tag. One copy of the plaintext, which the encryption then overwrites.
pub(crate) fn blob_buffer(plaintext: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(BLOB_HEADER_LEN + plaintext.len() + TAG_LEN);
    buf.resize(BLOB_HEADER_LEN, 0);
    buf.extend_from_slice(plaintext);
    buf
}

/// Seals the plaintext in `buf` (made by [`blob_buffer`]) for `object_id` under a fresh data
/// key: returns the record and the finished blob.
pub(crate) fn seal(
    master: &MasterKey,
    object_id: &str,
    blob_key: &str,
    mut buf: Vec<u8>,
) -> Result<(SealedObject, Vec<u8>)> {
    validate_object_id(object_id)?;
    let plaintext = &buf[BLOB_HEADER_LEN..];
    check_size(plaintext.len())?;
    let sha256 = hex::encode(Sha256::digest(plaintext));
    let md5 = hex::encode(Md5::digest(plaintext));
    let size = plaintext.len() as u64;

    let mut dek = Zeroizing::new([0u8; DEK_LEN]);
    random(&mut dek[..])?;
    let mut nonce = [0u8; NONCE_LEN];
    random(&mut nonce)?;
    buf[..BLOB_MAGIC.len()].copy_from_slice(&BLOB_MAGIC);
    buf[BLOB_MAGIC.len()] = BLOB_V1;
    buf[BLOB_MAGIC.len() + 1..BLOB_HEADER_LEN].copy_from_slice(&nonce);
    let tag = XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(&dek[..]))
        .encrypt_in_place_detached(
            XNonce::from_slice(&nonce),
            &context(BLOB_AAD, object_id),
            &mut buf[BLOB_HEADER_LEN..],
        )
        // Fails only past 256 GiB; check_size keeps objects far below.
        .map_err(|_| Error::TooLarge {
            size,
            limit: MAX_OBJECT_SIZE,
        })?;
    buf.extend_from_slice(&tag);
    let wrapped_key = master.seal(&dek[..], &context(DEK_AAD, object_id))?;
    Ok((
        SealedObject {
            object_id: object_id.to_string(),
            blob_key: blob_key.to_string(),
            wrapped_key,
            key_fingerprint: hex::encode(master.fingerprint()),
            sha256,
            md5,
            size,
        },
        buf,
    ))
}

/// Checks that `obj` has a valid id and was sealed under `master` (by fingerprint: a
/// diagnosis, so a wrong key is named as such; the wrapped key's tag is the real check).
pub(crate) fn check_master(master: &MasterKey, obj: &SealedObject) -> Result<()> {
    validate_object_id(&obj.object_id)?;
    let current = hex::encode(master.fingerprint());
    if !obj.key_fingerprint.eq_ignore_ascii_case(&current) {
        return Err(Error::WrongMasterKey {
            object_id: obj.object_id.clone(),
            sealed_with: obj.key_fingerprint.clone(),
            current,
        });
    }
    Ok(())
}

/// The data key of `obj`, after checking that `master` is the key it was sealed under.
fn unwrap_key(master: &MasterKey, obj: &SealedObject) -> Result<Zeroizing<Vec<u8>>> {
    check_master(master, obj)?;
    let dek = master
        .open(&obj.wrapped_key, &context(DEK_AAD, &obj.object_id))
        .map_err(|e| match e {
            // The fingerprint matched, so the key is right: the wrapped key was altered, or
            // the record's object id is not the one it was sealed for.
            safeguard_seal::Error::WrongKey => Error::Tampered {
                object_id: obj.object_id.clone(),
                what: "wrapped data key",
            },
            other => Error::Corrupt {
                object_id: obj.object_id.clone(),
                reason: format!("wrapped data key: {other}"),
            },
        })?;
    if dek.len() != DEK_LEN {
        return Err(Error::Corrupt {
            object_id: obj.object_id.clone(),
            reason: format!("wrapped data key holds {} bytes, not {DEK_LEN}", dek.len()),
        });
    }
    Ok(dek)
}

/// Opens `blob` with the record `obj`: the plaintext, after checking the master key, both
/// authentication tags, and the recorded size, SHA-256 and MD5.
pub(crate) fn open(master: &MasterKey, obj: &SealedObject, blob: &[u8]) -> Result<Vec<u8>> {
    let dek = unwrap_key(master, obj)?;
    let corrupt = |reason: String| Error::Corrupt {
        object_id: obj.object_id.clone(),
        reason,
    };
    if blob.len() < BLOB_HEADER_LEN + TAG_LEN {
        return Err(corrupt(format!(
            "blob of {} bytes is too short",
            blob.len()
        )));
    }
    if blob[..BLOB_MAGIC.len()] != BLOB_MAGIC {
        return Err(corrupt("blob does not start with the vault's magic".into()));
    }
    let version = blob[BLOB_MAGIC.len()];
    if version != BLOB_V1 {
        return Err(corrupt(format!("unknown blob format version {version}")));
    }
    let nonce = &blob[BLOB_MAGIC.len() + 1..BLOB_HEADER_LEN];
    let (ct, tag) = blob[BLOB_HEADER_LEN..].split_at(blob.len() - BLOB_HEADER_LEN - TAG_LEN);
    check_size(ct.len())?;
    let mut plaintext = ct.to_vec();
    XChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(&dek[..]))
        .decrypt_in_place_detached(
            XNonce::from_slice(nonce),
            &context(BLOB_AAD, &obj.object_id),
            &mut plaintext,
            Tag::from_slice(tag),
        )
        .map_err(|_| Error::Tampered {
            object_id: obj.object_id.clone(),
            what: "ciphertext",
        })?;
    // The tag already proves the plaintext is the one sealed; the record's digests and size
    // are checked too because callers trust them without reading the object (reports quote
    // them), so an altered record must not go unnoticed.
    if plaintext.len() as u64 != obj.size
        || !hex::encode(Sha256::digest(&plaintext)).eq_ignore_ascii_case(&obj.sha256)
        || !hex::encode(Md5::digest(&plaintext)).eq_ignore_ascii_case(&obj.md5)
    {
        return Err(Error::Tampered {
            object_id: obj.object_id.clone(),
            what: "recorded size or digest",
        });
    }
    Ok(plaintext)
}

/// `obj` with its data key wrapped by `to` instead of `from`: rotating the master key
/// rewrites the records only, never a blob.
pub(crate) fn rewrap(from: &MasterKey, to: &MasterKey, obj: &SealedObject) -> Result<SealedObject> {
    let dek = unwrap_key(from, obj)?;
    Ok(SealedObject {
        wrapped_key: to.seal(&dek, &context(DEK_AAD, &obj.object_id))?,
        key_fingerprint: hex::encode(to.fingerprint()),
        ..obj.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A benign, patterned plaintext.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    fn sealed(master: &MasterKey, id: &str, pt: &[u8]) -> (SealedObject, Vec<u8>) {
        seal(master, id, "aa/bb/cc", blob_buffer(pt)).unwrap()
    }

    #[test]
    fn round_trip_records_digests_and_hides_the_plaintext() {
        let k = MasterKey::generate().unwrap();
        let pt = pattern(10_000);
        let (obj, blob) = sealed(&k, "case-1:item-2", &pt);
        assert_eq!(blob.len(), BLOB_HEADER_LEN + pt.len() + TAG_LEN);
        assert_eq!(&blob[..4], b"SGVB");
        assert!(!blob.windows(64).any(|w| pt.windows(64).next() == Some(w)));
        assert_eq!(obj.size, 10_000);
        // Independently computed digests (sha2/md-5 directly, not through seal).
        assert_eq!(obj.sha256, hex::encode(Sha256::digest(&pt)));
        assert_eq!(obj.md5, hex::encode(Md5::digest(&pt)));
        assert_eq!(obj.wrapped_key.len(), 1 + NONCE_LEN + DEK_LEN + TAG_LEN);
        assert_eq!(open(&k, &obj, &blob).unwrap(), pt);
        // Empty objects are objects too.
        let (e, eb) = sealed(&k, "empty", b"");
        assert_eq!(open(&k, &e, &eb).unwrap(), b"");
        // Two seals of one plaintext share nothing but the digests.
        let (obj2, blob2) = sealed(&k, "case-1:item-2", &pt);
        assert_ne!(obj.wrapped_key, obj2.wrapped_key);
        assert_ne!(blob, blob2);
    }

    #[test]
    fn known_md5_and_sha256() {
        // RFC 1321 and FIPS 180-2 test vectors for "abc".
        let k = MasterKey::generate().unwrap();
        let (obj, _) = sealed(&k, "abc", b"abc");
        assert_eq!(obj.md5, "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            obj.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn every_altered_part_is_caught_and_named() {
        let k = MasterKey::generate().unwrap();
        let pt = pattern(1000);
        let (obj, blob) = sealed(&k, "obj-1", &pt);
        let tampered = |r: Result<Vec<u8>>, part: &str| match r {
            Err(Error::Tampered { what, .. }) => assert_eq!(what, part),
            other => panic!("{part}: {other:?}"),
        };
        // Each byte of the ciphertext and the tag, and the nonce.
        for i in [BLOB_HEADER_LEN - 1, BLOB_HEADER_LEN, 500, blob.len() - 1] {
            let mut b = blob.clone();
            b[i] ^= 0x01;
            tampered(open(&k, &obj, &b), "ciphertext");
        }
        // Truncated by one byte.
        tampered(open(&k, &obj, &blob[..blob.len() - 1]), "ciphertext");
        // The wrapped key, anywhere.
        for i in [1, 30, obj.wrapped_key.len() - 1] {
            let mut o = obj.clone();
            o.wrapped_key[i] ^= 0x80;
            tampered(open(&k, &o, &blob), "wrapped data key");
        }
        // The record's digests and size.
        for o in [
            SealedObject {
                size: 999,
                ..obj.clone()
            },
            SealedObject {
                sha256: "00".repeat(32),
                ..obj.clone()
            },
            SealedObject {
                md5: "00".repeat(16),
                ..obj.clone()
            },
        ] {
            tampered(open(&k, &o, &blob), "recorded size or digest");
        }
        // Structure: magic, version, length.
        let mut b = blob.clone();
        b[0] = b'X';
        assert!(matches!(open(&k, &obj, &b), Err(Error::Corrupt { .. })));
        let mut b = blob.clone();
        b[4] = 2;
        let err = open(&k, &obj, &b).unwrap_err();
        assert!(err.to_string().contains("version 2"), "{err}");
        assert!(matches!(
            open(&k, &obj, &blob[..20]),
            Err(Error::Corrupt { .. })
        ));
        let mut o = obj.clone();
        o.wrapped_key[0] = 9;
        assert!(matches!(open(&k, &o, &blob), Err(Error::Corrupt { .. })));
        // And the untouched pair still opens.
        assert_eq!(open(&k, &obj, &blob).unwrap(), pt);
    }

    #[test]
    fn object_ids_are_bound() {
        let k = MasterKey::generate().unwrap();
        let (a, blob_a) = sealed(&k, "obj-a", b"first evidence item");
        let (b, blob_b) = sealed(&k, "obj-b", b"first evidence item");
        // A record renamed to another object.
        let renamed = SealedObject {
            object_id: "obj-b".into(),
            ..a.clone()
        };
        assert!(matches!(
            open(&k, &renamed, &blob_a),
            Err(Error::Tampered {
                what: "wrapped data key",
                ..
            })
        ));
        // Wrapped keys swapped between records.
        let swapped = SealedObject {
            wrapped_key: b.wrapped_key.clone(),
            ..a.clone()
        };
        assert!(matches!(
            open(&k, &swapped, &blob_a),
            Err(Error::Tampered {
                what: "wrapped data key",
                ..
            })
        ));
        // Blobs swapped: the data key is another object's.
        assert!(matches!(
            open(&k, &a, &blob_b),
            Err(Error::Tampered {
                what: "ciphertext",
                ..
            })
        ));
    }

    #[test]
    fn a_wrong_master_key_is_named_as_such() {
        let k = MasterKey::generate().unwrap();
        let other = MasterKey::generate().unwrap();
        let (obj, blob) = sealed(&k, "obj-1", b"x");
        let err = open(&other, &obj, &blob).unwrap_err();
        match &err {
            Error::WrongMasterKey {
                sealed_with,
                current,
                ..
            } => {
                assert_eq!(sealed_with, &hex::encode(k.fingerprint()));
                assert_eq!(current, &hex::encode(other.fingerprint()));
            }
            e => panic!("{e:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("another master key") && msg.contains("SAFEGUARD_MASTER_KEY"));
        // A record whose fingerprint was altered to match the wrong key still fails, as
        // tampering: the fingerprint is a diagnosis, never a key check on its own.
        let forged = SealedObject {
            key_fingerprint: hex::encode(other.fingerprint()),
            ..obj
        };
        assert!(matches!(
            open(&other, &forged, &blob),
            Err(Error::Tampered { .. })
        ));
    }

    #[test]
    fn rewrap_moves_the_data_key_to_a_new_master_key() {
        let old = MasterKey::generate().unwrap();
        let new = MasterKey::generate().unwrap();
        let (obj, blob) = sealed(&old, "obj-1", b"rotate me");
        let moved = rewrap(&old, &new, &obj).unwrap();
        assert_eq!(open(&new, &moved, &blob).unwrap(), b"rotate me");
        assert!(matches!(
            open(&old, &moved, &blob),
            Err(Error::WrongMasterKey { .. })
        ));
        assert!(matches!(
            rewrap(&new, &old, &obj),
            Err(Error::WrongMasterKey { .. })
        ));
    }

    #[test]
    fn object_ids_and_sizes_are_checked() {
        let k = MasterKey::generate().unwrap();
        for bad in ["", "a/b", "../x", "a b", &"x".repeat(MAX_OBJECT_ID_LEN + 1)] {
            assert!(
                matches!(
                    seal(&k, bad, "k", blob_buffer(b"x")),
                    Err(Error::InvalidObjectId { .. })
                ),
                "{bad:?}"
            );
        }
        seal(&k, &"x".repeat(MAX_OBJECT_ID_LEN), "k", blob_buffer(b"x")).unwrap();
        assert!(check_size(MAX_OBJECT_SIZE as usize).is_ok());
        assert!(matches!(
            check_size(MAX_OBJECT_SIZE as usize + 1),
            Err(Error::TooLarge { .. })
        ));
    }
}
