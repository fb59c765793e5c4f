//! Export round trips, and tamper detection naming the first altered entry.

use safeguard_audit::export::MAX_LINE_LEN;
use safeguard_audit::{
    verify_export, write_export, Action, Entry, Error, ExportWriter, SignedTreeHead, SigningKey,
    Tamper, Tree, TreeHead,
};

const T0: i64 = 1_764_770_000_000;

fn entries(n: u64) -> Vec<Entry> {
    (0..n)
        .map(|i| {
            let action = Action::ALL[i as usize % Action::ALL.len()];
            Entry::new(
                i,
                T0 + i as i64 * 1000,
                format!("reviewer-{}", i % 3),
                action,
                format!("case-{i}"),
                format!("step {i} \"quoted\" \\ ünïcode"),
            )
            .unwrap()
        })
        .collect()
}

/// Signed heads at every `every` entries and at the end.
fn heads(entries: &[Entry], every: u64, key: &SigningKey) -> Vec<SignedTreeHead> {
    let tree = Tree::from_leaf_hashes(entries.iter().map(Entry::leaf_hash));
    let n = tree.size();
    let mut sizes: Vec<u64> = (1..=n).filter(|s| s % every == 0).collect();
    if sizes.last() != Some(&n) {
        sizes.push(n);
    }
    sizes
        .into_iter()
        .map(|size| {
            TreeHead {
                size,
                root: tree.root(size).unwrap(),
                timestamp_ms: T0 + size as i64,
            }
            .sign(key)
        })
        .collect()
}

fn export(entries: &[Entry], heads: &[SignedTreeHead]) -> Vec<String> {
    let bytes = write_export(Vec::new(), entries, heads).unwrap();
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn join(lines: &[String]) -> Vec<u8> {
    let mut out = lines.join("\n");
    out.push('\n');
    out.into_bytes()
}

/// The file line holding entry `position`.
fn entry_line(lines: &[String], position: usize) -> usize {
    lines
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, l)| !l.starts_with("{\"sth\""))
        .nth(position)
        .map(|(i, _)| i)
        .unwrap()
}

fn with_detail(line: &str, detail: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
    v["detail"] = detail.into();
    v.to_string()
}

fn first_bad(lines: &[String], key: &SigningKey) -> (u64, Tamper) {
    match verify_export(&join(lines)[..], &key.verifying_key()) {
        Err(Error::Tampered { index, reason, .. }) => (index, reason),
        other => panic!("expected tampering, got {other:?}"),
    }
}

const N: u64 = 21;

fn positions() -> [usize; 3] {
    [0, N as usize / 2, N as usize - 1]
}

#[test]
fn round_trip() {
    let key = SigningKey::generate().unwrap();
    let e = entries(N);
    let h = heads(&e, 5, &key);
    let lines = export(&e, &h);
    assert_eq!(
        lines[0],
        r#"{"format":"safeguard-audit-export","version":1}"#
    );
    assert_eq!(lines.len(), 1 + N as usize + h.len());
    assert!(lines.last().unwrap().starts_with("{\"sth\":{\"size\":21,"));
    let log = verify_export(&join(&lines)[..], &key.verifying_key()).unwrap();
    assert_eq!(log.entries(), &e[..]);
    assert_eq!(log.heads(), &h[..]);
    assert_eq!(log.size(), N);
    assert_eq!(log.latest_head().head.root, log.tree().current_root());
    for sth in &h {
        log.check_head(sth, &key.verifying_key()).unwrap();
    }
}

#[test]
fn empty_log_round_trips() {
    let key = SigningKey::generate().unwrap();
    let h = heads(&[], 1, &key);
    assert_eq!(h.len(), 1);
    let bytes = write_export(Vec::new(), &[], &h).unwrap();
    let log = verify_export(&bytes[..], &key.verifying_key()).unwrap();
    assert_eq!(log.size(), 0);
    // Header alone: nothing is signed.
    let bytes = write_export(Vec::new(), &[], &[]).unwrap();
    assert!(verify_export(&bytes[..], &key.verifying_key()).is_err());
}

#[test]
fn streaming_writer_uses_the_recorded_leaf_hashes() {
    // A row edited in the store after it was appended: the recorded leaf hash is the one
    // from append time, so the export names that row.
    let key = SigningKey::generate().unwrap();
    let e = entries(8);
    let h = heads(&e, 1, &key);
    let recorded: Vec<_> = e.iter().map(Entry::leaf_hash).collect();
    let mut edited = e.clone();
    edited[3] = Entry::new(
        3,
        e[3].at_ms(),
        "mallory",
        "login",
        "case-3",
        "nothing here",
    )
    .unwrap();
    let mut w = ExportWriter::new(Vec::new()).unwrap();
    for (i, entry) in edited.iter().enumerate() {
        w.entry(entry, &recorded[i]).unwrap();
        w.head(&h[i]).unwrap();
    }
    let bytes = w.finish().unwrap();
    match verify_export(&bytes[..], &key.verifying_key()) {
        Err(Error::Tampered {
            index: 3,
            reason: Tamper::Leaf,
            line,
        }) => assert_eq!(line, 8),
        other => panic!("{other:?}"),
    }
}

#[test]
fn writer_refuses_heads_ahead_of_the_entries_or_going_back() {
    let key = SigningKey::generate().unwrap();
    let e = entries(3);
    let h = heads(&e, 1, &key);
    let mut w = ExportWriter::new(Vec::new()).unwrap();
    assert!(w.head(&h[0]).is_err());
    w.entry(&e[0], &e[0].leaf_hash()).unwrap();
    w.entry(&e[1], &e[1].leaf_hash()).unwrap();
    w.head(&h[1]).unwrap();
    assert!(w.head(&h[0]).is_err());
}

#[test]
fn edited_entry_is_named() {
    let key = SigningKey::generate().unwrap();
    let e = entries(N);
    for every in [1, 4, N] {
        let lines = export(&e, &heads(&e, every, &key));
        for p in positions() {
            let mut bad = lines.clone();
            let at = entry_line(&bad, p);
            bad[at] = with_detail(&bad[at], "changed");
            assert_eq!(
                first_bad(&bad, &key),
                (p as u64, Tamper::Leaf),
                "heads every {every}"
            );
        }
    }
}

#[test]
fn deleted_entry_is_named() {
    let key = SigningKey::generate().unwrap();
    let e = entries(N);
    for every in [1, 4, N] {
        let lines = export(&e, &heads(&e, every, &key));
        for p in positions() {
            let mut bad = lines.clone();
            bad.remove(entry_line(&bad, p));
            let (index, _) = first_bad(&bad, &key);
            assert_eq!(index, p as u64, "heads every {every}, deleted {p}");
        }
    }
}

#[test]
fn reordered_entries_are_named() {
    let key = SigningKey::generate().unwrap();
    let e = entries(N);
    for every in [1, 4, N] {
        let lines = export(&e, &heads(&e, every, &key));
        // Swap with the next (the last with the one before it).
        for p in positions() {
            let q = if p + 1 < N as usize { p + 1 } else { p - 1 };
            let (a, b) = (entry_line(&lines, p), entry_line(&lines, q));
            let mut bad = lines.clone();
            bad.swap(a, b);
            let (index, reason) = first_bad(&bad, &key);
            assert_eq!(
                index,
                p.min(q) as u64,
                "heads every {every}, swapped {p} {q}"
            );
            assert!(matches!(reason, Tamper::Sequence { .. }));
        }
        // The first entry moved to the end.
        let mut bad = lines.clone();
        let line = bad.remove(entry_line(&bad, 0));
        let last = entry_line(&bad, N as usize - 2);
        bad.insert(last + 1, line);
        assert_eq!(first_bad(&bad, &key).0, 0);
    }
}

#[test]
fn inserted_entry_is_named() {
    let key = SigningKey::generate().unwrap();
    let e = entries(N);
    for every in [1, 4, N] {
        let lines = export(&e, &heads(&e, every, &key));
        for p in [0, N as usize / 2, N as usize] {
            // A forged line made from a neighbour, placed to become entry `p`.
            let model = entry_line(&lines, p.min(N as usize - 1));
            let forged = with_detail(&lines[model], "forged");
            let mut bad = lines.clone();
            let at = if p == N as usize {
                entry_line(&lines, p - 1) + 1
            } else {
                entry_line(&lines, p)
            };
            bad.insert(at, forged);
            assert_eq!(
                first_bad(&bad, &key).0,
                p as u64,
                "heads every {every}, forged {p}"
            );
            // An exact duplicate of the entry before it.
            if p > 0 {
                let mut dup = lines.clone();
                let prev = entry_line(&lines, p - 1);
                dup.insert(prev + 1, lines[prev].clone());
                assert_eq!(first_bad(&dup, &key).0, p as u64, "duplicate at {p}");
            }
        }
    }
}

/// A forger who rewrites the whole file with every locator recomputed, reusing the signed
/// heads: with a head per entry, the heads alone still name the first altered entry.
#[test]
fn recomputed_forgery_is_named_by_per_entry_heads() {
    let key = SigningKey::generate().unwrap();
    let e = entries(N);
    let h = heads(&e, 1, &key);
    let renumber = |v: Vec<Entry>| -> Vec<Entry> {
        v.into_iter()
            .enumerate()
            .map(|(i, x)| {
                Entry::new(
                    i as u64,
                    x.at_ms(),
                    x.actor(),
                    x.action(),
                    x.object(),
                    x.detail(),
                )
                .unwrap()
            })
            .collect()
    };
    for p in positions() {
        // Edit.
        let mut v = e.clone();
        v[p] = Entry::new(p as u64, 0, "mallory", "login", "", "").unwrap();
        assert_eq!(
            first_bad(&export(&v, &h), &key),
            (
                p as u64,
                Tamper::Head {
                    head_size: p as u64 + 1
                }
            )
        );
        // Delete (later entries renumbered; the final head then lies past the end).
        let mut v = e.clone();
        v.remove(p);
        let heads_fit: Vec<_> = h.iter().filter(|s| s.head.size < N).copied().collect();
        let mut lines = export(&renumber(v), &heads_fit);
        lines.push(
            serde_json::json!({"sth": {
            "size": N, "timestamp_ms": h[N as usize - 1].head.timestamp_ms,
            "root": hex::encode(h[N as usize - 1].head.root),
            "signature": hex::encode(h[N as usize - 1].signature)}})
            .to_string(),
        );
        assert_eq!(first_bad(&lines, &key).0, p as u64, "delete {p}");
        // Reorder.
        let q = if p + 1 < N as usize { p + 1 } else { p - 1 };
        let mut v = e.clone();
        v.swap(p, q);
        assert_eq!(
            first_bad(&export(&renumber(v), &h), &key).0,
            p.min(q) as u64
        );
        // Insert.
        let mut v = e.clone();
        v.insert(p, Entry::new(0, 0, "mallory", "login", "", "").unwrap());
        v.truncate(N as usize);
        assert_eq!(
            first_bad(&export(&renumber(v), &h), &key).0,
            p as u64,
            "insert {p}"
        );
    }
}

/// With sparse heads, a full forgery is still caught; the index given is the last size a
/// head vouches for, and the head names the end of the range.
#[test]
fn recomputed_forgery_with_sparse_heads_gives_the_range() {
    let key = SigningKey::generate().unwrap();
    let e = entries(N);
    let h = heads(&e, 4, &key);
    let mut v = e.clone();
    v[10] = Entry::new(10, 0, "mallory", "login", "", "").unwrap();
    assert_eq!(
        first_bad(&export(&v, &h), &key),
        (8, Tamper::Head { head_size: 12 })
    );
}

#[test]
fn wrong_key_fails() {
    let key = SigningKey::generate().unwrap();
    let other = SigningKey::generate().unwrap();
    let e = entries(N);
    let bytes = join(&export(&e, &heads(&e, 4, &key)));
    assert!(matches!(
        verify_export(&bytes[..], &other.verifying_key()),
        Err(Error::HeadSignature { line: 6, size: 4 })
    ));
    // An altered head fails its signature too.
    let mut lines = export(&e, &heads(&e, 4, &key));
    let head_line = lines
        .iter()
        .position(|l| l.starts_with("{\"sth\""))
        .unwrap();
    lines[head_line] = lines[head_line].replace("\"size\":4", "\"size\":3");
    assert!(matches!(
        verify_export(&join(&lines)[..], &key.verifying_key()),
        Err(Error::HeadSignature { .. })
    ));
}

/// A file cut short. Behaviour: entries after the last head are refused (the final head must
/// cover every entry); a file cut right after a head is a valid export of that earlier state,
/// which only a newer head held elsewhere can expose.
#[test]
fn truncated_file() {
    let key = SigningKey::generate().unwrap();
    let e = entries(N);
    let h = heads(&e, 4, &key);
    let lines = export(&e, &h);
    // The final head removed: entries 20 is covered by no head.
    let mut cut = lines.clone();
    cut.pop();
    assert_eq!(first_bad(&cut, &key), (20, Tamper::Unsigned { entries: N }));
    // The last entry removed, the final head kept: it is missing.
    let mut cut = lines.clone();
    cut.remove(cut.len() - 2);
    assert_eq!(
        first_bad(&cut, &key),
        (20, Tamper::Missing { head_size: N })
    );
    // Cut after the head of size 16 (it and entry 16 onwards removed, line by line).
    let at16 = lines
        .iter()
        .position(|l| l.contains("\"size\":16,"))
        .unwrap();
    let mut cut = lines[..at16].to_vec();
    cut.push(lines[at16].clone());
    cut.push(lines[at16 + 1].clone()); // entry 16 without a head
    assert_eq!(
        first_bad(&cut, &key),
        (16, Tamper::Unsigned { entries: 17 })
    );
    cut.pop();
    let log = verify_export(&join(&cut)[..], &key.verifying_key()).unwrap();
    assert_eq!(log.size(), 16);
    assert!(matches!(
        log.check_head(h.last().unwrap(), &key.verifying_key()),
        Err(Error::Truncated {
            size: 16,
            expected: 21
        })
    ));
    // Nothing at all, or no entries and no head.
    assert!(matches!(
        verify_export(&b""[..], &key.verifying_key()),
        Err(Error::Malformed { line: 1, .. })
    ));
    assert!(matches!(
        verify_export(&join(&lines[..1])[..], &key.verifying_key()),
        Err(Error::Tampered { index: 0, .. })
    ));
}

#[test]
fn malformed_lines_are_refused() {
    let key = SigningKey::generate().unwrap();
    let e = entries(4);
    let lines = export(&e, &heads(&e, 2, &key));
    let check = |bad: Vec<String>, want_line: u64| match verify_export(
        &join(&bad)[..],
        &key.verifying_key(),
    ) {
        Err(Error::Malformed { line, .. }) => assert_eq!(line, want_line),
        other => panic!("{other:?}"),
    };
    let mut bad = lines.clone();
    bad[0] = r#"{"format":"something-else","version":1}"#.into();
    check(bad, 1);
    let mut bad = lines.clone();
    bad[2] = "not json".into();
    check(bad, 3);
    let mut bad = lines.clone();
    bad[1] = bad[1].replace("\"seq\"", "\"extra\":1,\"seq\"");
    check(bad, 2);
    let mut bad = lines.clone();
    bad[1] = with_detail(&bad[1], &"ab".repeat(32));
    check(bad, 2);
    let mut bad = lines.clone();
    bad[1] = "x".repeat(MAX_LINE_LEN + 10);
    check(bad, 2);
    // Heads out of order.
    let mut bad = lines.clone();
    let last = bad.len() - 1;
    let first_head = bad.iter().position(|l| l.starts_with("{\"sth\"")).unwrap();
    let moved = bad[last].clone();
    bad.insert(first_head, moved);
    bad.pop();
    assert!(verify_export(&join(&bad)[..], &key.verifying_key()).is_err());
}
