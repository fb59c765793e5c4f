//! StopNCII `FetchHashes` pages:
//!
//! ```text
//! {"count": 2, "nextPageToken": "..", "nextSetTimestamp": 1700000000, "hasMoreRecords": false,
//!  "hashRecords": [{"lastModtimestamp": 1700000000, "signalType": "ImagePDQ",
//!                   "hashValue": "..", "hashStatus": "Active", "caseNumbers": {..},
//!                   "CSPFeedbacks": [..]}, ..]}
//! ```
//!
//! A bare array of records is accepted too. Records are streamed one at a time (the page is
//! never held in memory). `hashStatus` `Withdrawn` or `Deleted` withdraws the hash; any other
//! status lists it. The shape follows python-threatexchange's StopNCII client.

use std::fmt;
use std::io::BufRead;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::{Action, Error, Position, Record, MAX_FIELD_BYTES};

/// Safeguard's signal type for a StopNCII one, shared by file import and the StopNCII exchange
/// so that a bank fed either way names its signals alike. Types Safeguard does not match keep
/// their own name, lower-cased.
pub fn signal_type_for(t: &str) -> String {
    match t {
        "ImagePDQ" => "pdq".into(),
        "VideoMD5" => "video_md5".into(),
        "VideoTMK" => "tmk_pdqf".into(),
        other => other.to_ascii_lowercase(),
    }
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct RawRecord {
    signalType: String,
    hashValue: String,
    #[serde(default)]
    hashStatus: Option<String>,
    #[serde(default)]
    lastModtimestamp: Option<i64>,
}

/// Where the sink's own error waits while serde unwinds with a placeholder.
struct State<'s, E> {
    sink: &'s mut dyn FnMut(&Record<'_>) -> Result<(), E>,
    index: u64,
    failed: Option<E>,
}

impl<E: From<Error>> State<'_, E> {
    fn record<A: de::Error>(&mut self, raw: RawRecord) -> Result<(), A> {
        let position = Position::Record(self.index);
        let result = if raw.hashValue.len() > MAX_FIELD_BYTES {
            Err(Error::at(
                position,
                format!("hashValue is longer than {MAX_FIELD_BYTES} bytes"),
            )
            .into())
        } else if raw.hashValue.trim().is_empty() || raw.signalType.trim().is_empty() {
            // As a delimited row without a hash: a record names no hash to import or withdraw.
            Err(Error::at(position, "a record with an empty hashValue or signalType").into())
        } else {
            let action = match raw.hashStatus.as_deref() {
                Some("Withdrawn" | "Deleted") => Action::Withdraw,
                _ => Action::List,
            };
            let metadata = raw
                .lastModtimestamp
                .map(|t| format!("{{\"stopncii_last_modified\":{t}}}"));
            (self.sink)(&Record {
                position,
                action,
                signal_type: &signal_type_for(&raw.signalType),
                value: raw.hashValue.trim(),
                source_id: None,
                classification: None,
                metadata: metadata.as_deref(),
            })
        };
        self.index += 1;
        result.map_err(|e| {
            self.failed = Some(e);
            A::custom("stopped by the importer")
        })
    }
}

struct Records<'a, 's, E>(&'a mut State<'s, E>);

impl<'de, E: From<Error>> DeserializeSeed<'de> for Records<'_, '_, E> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, E: From<Error>> Visitor<'de> for Records<'_, '_, E> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of StopNCII hash records")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(raw) = seq.next_element::<RawRecord>()? {
            self.0.record::<A::Error>(raw)?;
        }
        Ok(())
    }
}

struct Page<'a, 's, E>(&'a mut State<'s, E>);

impl<'de, E: From<Error>> DeserializeSeed<'de> for Page<'_, '_, E> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, E: From<Error>> Visitor<'de> for Page<'_, '_, E> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a StopNCII FetchHashes page (an object with hashRecords) or an array of records",
        )
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut found = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "hashRecords" {
                map.next_value_seed(Records(&mut *self.0))?;
                found = true;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        if !found {
            return Err(de::Error::custom("no hashRecords array in the page"));
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        Records(self.0).visit_seq(seq)
    }
}

pub(crate) fn read<R: BufRead, E: From<Error>>(
    reader: R,
    sink: &mut dyn FnMut(&Record<'_>) -> Result<(), E>,
) -> Result<u64, E> {
    let mut state = State {
        sink,
        index: 0,
        failed: None,
    };
    // A string is bounded before serde decodes it (its own limit is checked after): `"` ends
    // a run, so the space between two strings is bounded too.
    let mut de = serde_json::Deserializer::from_reader(crate::RunLimit::new(
        reader,
        |b| b == b'"',
        "a JSON string, or the text between two,",
    ));
    let result = Page(&mut state)
        .deserialize(&mut de)
        .and_then(|()| de.end());
    if let Some(e) = state.failed.take() {
        return Err(e);
    }
    match result {
        Ok(()) => Ok(state.index),
        Err(e) if e.is_io() => Err(Error::Io(e.into()).into()),
        Err(e) => Err(Error::at(
            Position::Record(state.index),
            format!(
                "malformed JSON at line {} column {}: {e}",
                e.line(),
                e.column()
            ),
        )
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Row = (u64, Action, String, String);

    fn collect(text: &str) -> Result<Vec<Row>, Error> {
        let mut out = Vec::new();
        read(text.as_bytes(), &mut |r: &Record<'_>| {
            let Position::Record(i) = r.position else {
                unreachable!("JSON records are numbered")
            };
            out.push((i, r.action, r.signal_type.to_string(), r.value.to_string()));
            Ok::<(), Error>(())
        })?;
        Ok(out)
    }

    #[test]
    fn signal_type_names_map_to_signal_types() {
        // The StopNCII exchange uses this same function, so file import and exchange agree.
        for (f, t) in [
            ("ImagePDQ", "pdq"),
            ("VideoMD5", "video_md5"),
            ("VideoTMK", "tmk_pdqf"),
            ("SomethingNew", "somethingnew"),
        ] {
            assert_eq!(signal_type_for(f), t);
        }
    }

    #[test]
    fn reads_a_page_with_withdrawals() {
        let pdq = "e".repeat(64);
        let md5 = "0".repeat(32);
        let page = format!(
            r#"{{"count": 3, "nextPageToken": "t", "hasMoreRecords": false, "nextSetTimestamp": 5,
            "hashRecords": [
              {{"lastModtimestamp": 1, "signalType": "ImagePDQ", "hashValue": "{pdq}",
                "hashStatus": "Active", "caseNumbers": {{"c1": "Active"}}, "CSPFeedbacks": []}},
              {{"lastModtimestamp": 2, "signalType": "VideoMD5", "hashValue": "{md5}",
                "hashStatus": "Withdrawn", "caseNumbers": {{}}}},
              {{"signalType": "Text", "hashValue": "hello"}}
            ]}}"#
        );
        assert_eq!(
            collect(&page).unwrap(),
            vec![
                (0, Action::List, "pdq".into(), pdq),
                (1, Action::Withdraw, "video_md5".into(), md5),
                (2, Action::List, "text".into(), "hello".into()),
            ]
        );
        assert_eq!(collect("[]").unwrap(), vec![]);
    }

    #[test]
    fn malformed_pages_name_the_record() {
        let e = collect(
            r#"{"hashRecords": [{"signalType": "ImagePDQ", "hashValue": "a"}, {"signalType": 3}]}"#,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("record 1: malformed JSON at line 1"),
            "{e}"
        );
        let e = collect(r#"{"count": 0}"#).unwrap_err();
        assert!(e.to_string().contains("no hashRecords"), "{e}");
        let e = collect(r#"[{"signalType": "ImagePDQ", "hashValue": "a"}] trailing"#).unwrap_err();
        assert!(e.to_string().contains("malformed JSON"), "{e}");
    }

    /// Found by the `list_stopncii` fuzz target: an empty hashValue reached the sink as a
    /// record without a value.
    #[test]
    fn empty_values_and_types_are_refused() {
        for page in [
            r#"[{"signalType": "ImagePDQ", "hashValue": ""}]"#,
            r#"[{"signalType": "ImagePDQ", "hashValue": "a"}, {"signalType": "ImagePDQ", "hashValue": "  "}]"#,
            r#"[{"signalType": "", "hashValue": "a"}]"#,
        ] {
            let e = collect(page).unwrap_err();
            assert!(
                e.to_string().contains("empty hashValue or signalType"),
                "{page}: {e}"
            );
        }
        let e = collect(r#"[{"signalType": "ImagePDQ", "hashValue": "a"}, {"signalType": "ImagePDQ", "hashValue": ""}]"#)
            .unwrap_err();
        assert!(e.to_string().starts_with("record 1: "), "{e}");
    }

    #[test]
    fn sink_errors_come_back_unchanged() {
        let e = read(
            r#"[{"signalType": "ImagePDQ", "hashValue": "a"}]"#.as_bytes(),
            &mut |_r: &Record<'_>| Err(Error::Options("stop".into())),
        )
        .unwrap_err();
        assert!(matches!(e, Error::Options(m) if m == "stop"));
    }
}
