//! Hash-list imports, exports, diffs, exchange batches and provenance through the engine,
//! over a real SQLite store: what is imported matches, what is withdrawn stops matching, a bad
//! list changes nothing, and every format round-trips.

use std::sync::Arc;

use safeguard_engine::{
    CreateBank, Engine, Error, ImportOptions, LookupOptions, SignalType, SignalValue,
};
use safeguard_lists::{Column, CsvMapping, Format};
use safeguard_store::{
    Change, DiffSide, ExchangeCheckpoint, SourceBatch, SourceEntry, SourceRemoval, SqliteStore,
    Store,
};

const PDQ: &str = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22";

fn engine() -> Engine {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
    let e = Engine::open(store).unwrap();
    for name in ["LIST", "OTHER"] {
        e.create_bank(&CreateBank {
            name: name.into(),
            ..Default::default()
        })
        .unwrap();
    }
    e
}

/// Distinct benign MD5-shaped values.
fn md5(i: u32) -> String {
    format!("{i:032x}")
}

fn matches(e: &Engine, t: SignalType, v: &str) -> usize {
    let opts = LookupOptions {
        coinflip: Some(0.0),
        ..Default::default()
    };
    e.lookup(&SignalValue::parse(t, v).unwrap(), &opts)
        .unwrap()
        .matches
        .len()
}

fn plain(t: Option<&str>) -> Format {
    Format::Plain {
        signal_type: t.map(str::to_string),
    }
}

/// Everything observable about a bank's content and the feed.
fn state(e: &Engine) -> String {
    let store = e.store();
    let mut feed = Vec::new();
    store
        .changes_since(0, usize::MAX, &mut |s, c| feed.push((s, c)))
        .unwrap();
    format!(
        "{:?}\n{:?}\n{:?}",
        e.list_content("LIST", None, 1000).unwrap(),
        store.counts().unwrap(),
        feed
    )
}

#[test]
fn plain_import_matches_and_reimport_changes_nothing() {
    let e = engine();
    let text = format!(
        "# benign test list\n{}\n{}\n\n{}\n{}\n",
        md5(1),
        md5(2).to_uppercase(),
        md5(1),
        "da39a3ee5e6b4b0d3255bfef95601890afd80709"
    );
    let opts = ImportOptions::new(plain(None), "file:test.txt");
    let r = e.import_list("LIST", &opts, text.as_bytes()).unwrap();
    assert_eq!(r.records, 4);
    assert_eq!(
        (r.outcome.added, r.outcome.refreshed, r.outcome.unchanged),
        (3, 0, 1)
    );
    assert_eq!(
        matches(&e, SignalType::Md5, &md5(2)),
        1,
        "values are normalised"
    );
    assert_eq!(
        matches(
            &e,
            SignalType::Sha1,
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        ),
        1
    );
    let before = state(&e);
    let r = e.import_list("LIST", &opts, text.as_bytes()).unwrap();
    assert_eq!((r.outcome.added, r.outcome.refreshed), (0, 3));
    assert_eq!(
        state(&e),
        before,
        "a re-import changes no content and no feed"
    );
    let p = e.provenance("LIST", SignalType::Md5, &md5(1)).unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].source, "file:test.txt");
    assert!(p[0].last_seen >= p[0].first_seen);
}

#[test]
fn malformed_lists_name_the_line_and_change_nothing() {
    let e = engine();
    let opts = ImportOptions::new(plain(Some("md5")), "file:a.txt");
    e.import_list("LIST", &opts, format!("{}\n", md5(9)).as_bytes())
        .unwrap();
    let before = state(&e);
    let cases: Vec<(Format, String, &str)> = vec![
        (
            plain(Some("md5")),
            format!("{}\n{}\nnot-a-hash\n", md5(1), md5(2)),
            "line 3: invalid md5 value",
        ),
        (
            plain(None),
            format!("{}\n{PDQ}\n", md5(1)),
            "line 2: a 64-digit value may be PDQ or SHA-256",
        ),
        (
            plain(Some("nonesuch")),
            format!("{}\n", md5(1)),
            "line 1: unknown signal type",
        ),
        (
            Format::Csv(CsvMapping {
                hash: Some(Column::Number(2)),
                signal_type: Some("md5".into()),
                ..CsvMapping::default()
            }),
            format!("a,{}\nb\n", md5(1)),
            "line 2: no hash in column 2",
        ),
        (
            Format::Ncmec,
            "<queryResult><images><image><id>x</id><fingerprints><md5>zz</md5></fingerprints></image></images></queryResult>".into(),
            "entry 1 (byte",
        ),
        (
            Format::StopNcii,
            format!(r#"{{"hashRecords": [{{"signalType": "ImagePDQ", "hashValue": "{PDQ}"}}, {{"signalType": "ImagePDQ", "hashValue": "12"}}]}}"#),
            "record 1: invalid pdq value",
        ),
    ];
    for (format, text, want) in cases {
        let opts = ImportOptions::new(format.clone(), "file:bad");
        let err = e.import_list("LIST", &opts, text.as_bytes()).unwrap_err();
        assert!(
            matches!(err, Error::Invalid(_)) && err.to_string().starts_with(want),
            "{format:?}: {err}"
        );
        assert_eq!(state(&e), before, "{format:?}: bank unchanged after {err}");
    }
    assert_eq!(matches(&e, SignalType::Md5, &md5(1)), 0);
}

#[test]
fn ncmec_pages_import_and_deleted_entries_leave_matching() {
    let e = engine();
    let page1 = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2">
  <images count="2">
    <image><id>image1</id><classification>A1</classification>
      <fingerprints><md5>{}</md5><pdq>{PDQ}</pdq><pdna>{}</pdna></fingerprints></image>
    <image><id>image2</id><classification>B2</classification>
      <fingerprints><md5>{}</md5></fingerprints></image>
  </images>
  <videos count="1">
    <video><id>video1</id><fingerprints><md5>{}</md5>
      <tmk-pdqf rel="self" href="/v2/entries/1/fingerprints/TMK_PDQF"/></fingerprints></video>
  </videos>
</queryResult>"#,
        md5(1),
        "0".repeat(288),
        md5(2),
        md5(3)
    );
    let opts = ImportOptions::new(Format::Ncmec, "exchange:NCMEC");
    let r = e.import_list("LIST", &opts, page1.as_bytes()).unwrap();
    // md5 ×3, pdq and pdna (PhotoDNA, a signal type of its own).
    assert_eq!(r.outcome.added, 5, "{r:?}");
    assert!(r.skipped.is_empty(), "{r:?}");
    assert_eq!(matches(&e, SignalType::Pdq, PDQ), 1);
    let p = e.provenance("LIST", SignalType::Md5, &md5(2)).unwrap();
    assert_eq!(
        (p[0].source_id.as_deref(), p[0].classification.as_deref()),
        (Some("image2"), Some("B2"))
    );
    let page2 = r#"<queryResult><images count="1">
        <deletedImage><id>image1</id></deletedImage></images></queryResult>"#;
    let r = e.import_list("LIST", &opts, page2.as_bytes()).unwrap();
    // image1's md5, pdq and pdna.
    assert_eq!(r.outcome.removed, 3, "{r:?}");
    assert_eq!(matches(&e, SignalType::Pdq, PDQ), 0);
    assert_eq!(matches(&e, SignalType::Md5, &md5(1)), 0);
    assert_eq!(matches(&e, SignalType::Md5, &md5(2)), 1);
    let p = e.provenance("LIST", SignalType::Md5, &md5(1)).unwrap();
    assert!(p[0].withdrawn_at.is_some(), "kept for the audit trail");
}

#[test]
fn stopncii_withdrawals_and_unknown_types() {
    let e = engine();
    let page = |status: &str| {
        format!(
            r#"{{"count": 3, "hashRecords": [
              {{"signalType": "ImagePDQ", "hashValue": "{PDQ}", "hashStatus": "{status}"}},
              {{"signalType": "VideoMD5", "hashValue": "{}", "hashStatus": "Active"}},
              {{"signalType": "Text", "hashValue": "hello", "hashStatus": "Active"}}]}}"#,
            md5(5)
        )
    };
    let opts = ImportOptions::new(Format::StopNcii, "exchange:STOPNCII");
    let r = e
        .import_list("LIST", &opts, page("Active").as_bytes())
        .unwrap();
    assert_eq!(r.outcome.added, 2);
    assert_eq!(r.skipped.get("text"), Some(&1));
    assert_eq!(matches(&e, SignalType::Md5, &md5(5)), 1);
    let r = e
        .import_list("LIST", &opts, page("Withdrawn").as_bytes())
        .unwrap();
    assert_eq!(r.outcome.removed, 1);
    assert_eq!(matches(&e, SignalType::Pdq, PDQ), 0);
}

#[test]
fn exports_round_trip_in_every_format() {
    let e = engine();
    let text = format!("pdq {PDQ}\nmd5 {}\nsha1 {}\n", md5(7), "ab".repeat(20));
    e.import_list(
        "LIST",
        &ImportOptions::new(plain(None), "file:src.txt"),
        text.as_bytes(),
    )
    .unwrap();
    let formats = [
        plain(None),
        Format::Csv(CsvMapping {
            header: true,
            ..CsvMapping::default()
        }),
        Format::Hma,
        Format::Ncmec,
        Format::StopNcii,
    ];
    for (i, format) in formats.iter().enumerate() {
        let mut out = Vec::new();
        let report = e.export_list("LIST", format, None, &mut out).unwrap();
        let bank = format!("ROUND_{i}");
        e.create_bank(&CreateBank {
            name: bank.clone(),
            ..Default::default()
        })
        .unwrap();
        let r = e
            .import_list(
                &bank,
                &ImportOptions::new(format.clone(), "file:export"),
                &out[..],
            )
            .unwrap_or_else(|err| panic!("{format:?}: {err}\n{}", String::from_utf8_lossy(&out)));
        assert_eq!(r.outcome.added, report.written, "{format:?}");
        let diff = e
            .store()
            .bank_by_name(&bank)
            .unwrap()
            .map(|b| safeguard_engine::diff_list(e.store().as_ref(), b.id, format, &out[..], None))
            .unwrap()
            .unwrap();
        assert_eq!(diff.outcome.common, report.written, "{format:?}");
        assert_eq!(
            (diff.outcome.only_in_file, diff.outcome.only_in_bank),
            (0, 0)
        );
        let expected_written = match format {
            Format::StopNcii => 2,
            _ => 3,
        };
        assert_eq!(report.written, expected_written, "{format:?}");
    }
    // A one-type export of a plain list is bare values.
    let mut out = Vec::new();
    e.export_list("LIST", &plain(None), Some(&[SignalType::Md5]), &mut out)
        .unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), format!("{}\n", md5(7)));
}

#[test]
fn diff_lists_both_sides() {
    let e = engine();
    let opts = ImportOptions::new(plain(Some("md5")), "file:a");
    let bank: String = (0..5).map(|i| format!("{}\n", md5(i))).collect();
    e.import_list("LIST", &opts, bank.as_bytes()).unwrap();
    let file: String = (3..8).map(|i| format!("{}\n", md5(i))).collect();
    let id = e.bank("LIST").unwrap().id;
    let mut shown = Vec::new();
    let mut show = |side: DiffSide, _t: &str, v: &str| shown.push((side, v.to_string()));
    let d = safeguard_engine::diff_list(
        e.store().as_ref(),
        id,
        &plain(Some("md5")),
        file.as_bytes(),
        Some(&mut show),
    )
    .unwrap();
    assert_eq!(
        (
            d.outcome.only_in_file,
            d.outcome.only_in_bank,
            d.outcome.common
        ),
        (3, 3, 2)
    );
    assert_eq!(shown.len(), 6);
    assert!(shown.contains(&(DiffSide::OnlyInBank, md5(0))));
    assert!(shown.contains(&(DiffSide::OnlyInFile, md5(7))));
}

#[test]
fn exchange_batches_validate_normalise_and_checkpoint() {
    let e = engine();
    let up = |t: &str, v: &str| SourceEntry {
        signal_type: t.into(),
        value: v.into(),
        source_id: Some("c1".into()),
        ..Default::default()
    };
    let upserts = [up("pdq", &PDQ.to_uppercase()), up("video_md5", &md5(3))];
    let batch = SourceBatch {
        source: "exchange:X",
        seen_at: 1,
        upserts: &upserts,
        removals: &[],
        checkpoint: Some(ExchangeCheckpoint {
            exchange: "X",
            checkpoint: "42",
        }),
    };
    let out = e.apply_source_batch("LIST", &batch).unwrap();
    assert_eq!(out.added, 2);
    assert_eq!(matches(&e, SignalType::Pdq, PDQ), 1);
    assert_eq!(matches(&e, SignalType::Md5, &md5(3)), 1, "video_md5 is md5");
    let s = e.exchange_state("X").unwrap().unwrap();
    assert_eq!((s.checkpoint.as_deref(), s.entries), (Some("42"), 2));

    let bad = [up("md5", &md5(4)), up("md5", "xyz")];
    let before = state(&e);
    let err = e
        .apply_source_batch(
            "LIST",
            &SourceBatch {
                upserts: &bad,
                ..batch
            },
        )
        .unwrap_err();
    assert!(
        err.to_string().starts_with("upsert 1: invalid md5 value"),
        "{err}"
    );
    assert_eq!(state(&e), before);
    assert_eq!(
        e.exchange_state("X")
            .unwrap()
            .unwrap()
            .checkpoint
            .as_deref(),
        Some("42")
    );

    let removals = [SourceRemoval {
        signal_type: "pdq".into(),
        value: PDQ.into(),
    }];
    let out = e
        .apply_source_batch(
            "LIST",
            &SourceBatch {
                upserts: &[],
                removals: &removals,
                seen_at: 2,
                ..batch
            },
        )
        .unwrap();
    assert_eq!(out.removed, 1);
    assert_eq!(matches(&e, SignalType::Pdq, PDQ), 0);
    let mut removed = 0;
    e.store()
        .changes_since(0, usize::MAX, &mut |_, c| {
            removed += matches!(c, Change::Removed(_)) as usize
        })
        .unwrap();
    assert_eq!(removed, 1);
    assert!(matches!(
        e.apply_source_batch("NOPE", &batch),
        Err(Error::BankNotFound(_))
    ));
    assert!(matches!(
        e.apply_source_batch(
            "LIST",
            &SourceBatch {
                source: "bogus",
                ..batch
            }
        ),
        Err(Error::Invalid(_))
    ));
}

#[test]
fn entry_limit_is_enforced() {
    let e = engine();
    let mut opts = ImportOptions::new(plain(Some("md5")), "file:big");
    opts.max_entries = 3;
    let text: String = (0..4).map(|i| format!("{}\n", md5(i))).collect();
    let err = e.import_list("LIST", &opts, text.as_bytes()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("line 4: the list has more than 3 entries"),
        "{err}"
    );
    assert_eq!(matches(&e, SignalType::Md5, &md5(0)), 0);
}
