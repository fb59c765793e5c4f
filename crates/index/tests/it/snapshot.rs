//! Snapshots round-trip, and damage of any kind is detected.

use safeguard_index::{Error, Md5Index, PdqIndex, PdqIndexConfig, Sha256Index};
use safeguard_pdq::PdqHash;

use crate::common::{clustered_bank, query_near, Model, Rng};

fn sample_index() -> (PdqIndex, Model, Vec<(u64, PdqHash)>) {
    let mut rng = Rng(3);
    let bank = clustered_bank(&mut rng, 5_000);
    let index = PdqIndex::from_entries(bank.iter().map(|(id, h)| (*id, h))).unwrap();
    let mut model = Model(bank.iter().copied().collect());
    // Live updates in the tail and tombstones in the segment must survive too.
    for i in 0..100u64 {
        let h = rng.hash();
        index.add(90_000 + i, &h);
        model.0.insert((90_000 + i, h));
    }
    for (id, h) in bank.iter().step_by(7) {
        index.remove(*id, h);
        model.0.remove(&(*id, *h));
    }
    (index, model, bank)
}

#[test]
fn pdq_snapshot_round_trips() {
    let (index, model, bank) = sample_index();
    let mut buf = Vec::new();
    index.write_snapshot(&mut buf).unwrap();
    assert_eq!(buf.len(), 36 + 40 * model.0.len() + 4);
    let back = PdqIndex::read_snapshot(&buf[..], PdqIndexConfig::default()).unwrap();
    assert_eq!(back.len(), model.0.len());
    let mut rng = Rng(4);
    for r in [0, 8, 31, 64] {
        for _ in 0..20 {
            let q = query_near(&mut rng, &bank, r + 4);
            assert_eq!(back.search(&q, r).unwrap(), model.search(&q, r));
        }
    }
    let empty = PdqIndex::new();
    let mut buf = Vec::new();
    empty.write_snapshot(&mut buf).unwrap();
    assert!(PdqIndex::read_snapshot(&buf[..], PdqIndexConfig::default())
        .unwrap()
        .is_empty());
}

fn load(bytes: &[u8]) -> Result<PdqIndex, Error> {
    PdqIndex::read_snapshot(bytes, PdqIndexConfig::default())
}

#[test]
fn every_flipped_byte_is_detected() {
    let index = PdqIndex::new();
    let mut rng = Rng(8);
    for i in 0..50u64 {
        index.add(i, &rng.hash());
    }
    let mut good = Vec::new();
    index.write_snapshot(&mut good).unwrap();
    for pos in 0..good.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = good.clone();
            bad[pos] ^= bit;
            match load(&bad) {
                Err(Error::SnapshotCorrupt(_))
                | Err(Error::SnapshotVersion { .. })
                | Err(Error::SnapshotKind { .. }) => {}
                other => panic!("flip at byte {pos}: {other:?}"),
            }
        }
    }
}

#[test]
fn every_truncation_is_detected() {
    let (index, _, _) = sample_index();
    let mut good = Vec::new();
    index.write_snapshot(&mut good).unwrap();
    let mut cuts: Vec<usize> = (0..200).collect();
    cuts.extend((200..good.len()).step_by(997));
    cuts.extend(good.len() - 8..good.len());
    for cut in cuts {
        match load(&good[..cut]) {
            Err(Error::SnapshotTruncated(_)) => {}
            other => panic!("cut at {cut} of {}: {other:?}", good.len()),
        }
    }
    let mut long = good.clone();
    long.push(0);
    assert!(matches!(load(&long), Err(Error::SnapshotCorrupt(_))));
    assert!(load(&good).is_ok());
}

#[test]
fn kinds_and_versions_are_checked() {
    let md5 = Md5Index::from_entries(vec![([7u8; 16], 1)]);
    let mut buf = Vec::new();
    md5.write_snapshot(&mut buf).unwrap();
    assert!(matches!(load(&buf), Err(Error::SnapshotKind { .. })));
    assert!(matches!(
        Sha256Index::read_snapshot(&buf[..]),
        Err(Error::SnapshotKind { .. })
    ));
    assert_eq!(Md5Index::read_snapshot(&buf[..]).unwrap().len(), 1);
    // A future version with a valid header checksum is refused by version, not as damage.
    let mut v2 = buf.clone();
    v2[8] = 2;
    let crc = crc_of(&v2[..32]);
    v2[32..36].copy_from_slice(&crc.to_le_bytes());
    assert!(matches!(
        Md5Index::read_snapshot(&v2[..]),
        Err(Error::SnapshotVersion { found: 2, .. })
    ));
    assert!(matches!(load(b"hello"), Err(Error::SnapshotTruncated(_))));
    assert!(matches!(
        load(b"hello, this is not a snapshot at all!!"),
        Err(Error::SnapshotCorrupt(_))
    ));
}

/// CRC-32 (IEEE), bit by bit: independent of the crate's implementation.
fn crc_of(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
