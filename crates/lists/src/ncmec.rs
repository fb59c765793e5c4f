//! NCMEC hash-sharing API v2 `queryResult` pages:
//!
//! ```text
//! <queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2">
//!   <images count=".." maxTimestamp="..">
//!     <image><member id="42">..</member><timestamp>..</timestamp><id>image1</id>
//!       <classification>A1</classification>
//!       <fingerprints><md5>..</md5><sha1>..</sha1><pdna>..</pdna><pdq>..</pdq></fingerprints>
//!       <feedback>..</feedback></image>
//!     <deletedImage><member id="43">..</member><id>image4</id><timestamp>..</timestamp></deletedImage>
//!   </images>
//!   <videos ..><video>.. <fingerprints><md5/><sha1/><tmk-pdqf rel="self" href=".."/>
//!     <videntifier .. href=".."/></fingerprints></video><deletedVideo>..</deletedVideo></videos>
//!   <paging><next>/v2/entries?..</next></paging>
//! </queryResult>
//! ```
//!
//! Each fingerprint of an entry becomes one record with the entry's id as source id and its
//! classification; a deleted entry becomes a [`crate::Action::WithdrawSourceId`]. Fingerprints
//! given only by reference (`href`, no text: NCMEC's TMK and Videntifier) are skipped. The
//! shape follows python-threatexchange's NCMEC client and its test pages.

use std::io::BufRead;

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::{Action, Error, Position, Record, MAX_FIELD_BYTES};

/// Safeguard's signal type for an NCMEC fingerprint element, shared by file import and the NCMEC
/// exchange so that a bank fed either way names its signals alike. Types Safeguard does not
/// match keep their own name, lower-cased.
pub fn signal_type_for(fingerprint: &str) -> String {
    match fingerprint {
        "md5" => "md5".into(),
        "sha1" => "sha1".into(),
        "pdq" => "pdq".into(),
        "pdna" => "photodna".into(),
        "tmk-pdqf" => "tmk_pdqf".into(),
        other => other.to_ascii_lowercase(),
    }
}

/// The entry being read.
#[derive(Default)]
struct Entry {
    deleted: bool,
    id: String,
    classification: String,
    /// (signal type, value).
    fingerprints: Vec<(String, String)>,
}

/// Which text is being collected.
#[derive(Clone, Copy, PartialEq)]
enum Capture {
    None,
    Id,
    Classification,
    Fingerprint,
}

pub(crate) fn read<R: BufRead, E: From<Error>>(
    reader: R,
    sink: &mut dyn FnMut(&Record<'_>) -> Result<(), E>,
) -> Result<u64, E> {
    let mut xml = Reader::from_reader(std::io::BufReader::new(crate::RunLimit::new(
        reader,
        |b| b == b'<' || b == b'>',
        "a text or tag",
    )));
    xml.config_mut().trim_text(true);
    let mut buf = Vec::new();
    // Local names of the open elements.
    let mut path: Vec<String> = Vec::new();
    let mut entry: Option<Entry> = None;
    let mut entries = 0u64;
    let mut capture = Capture::None;
    let mut text = String::new();
    let mut fingerprint = String::new();
    let mut passed = 0u64;
    let mut seen_root = false;
    loop {
        let byte = xml.buffer_position();
        let position = if entries == 0 {
            Position::Byte(byte)
        } else {
            Position::Entry {
                entry: entries,
                byte,
            }
        };
        let event = xml
            .read_event_into(&mut buf)
            .map_err(|e| Error::at(position, format!("malformed XML: {e}")))?;
        match event {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if !seen_root {
                    if name != "queryResult" {
                        return Err(Error::at(
                            position,
                            format!("expected an NCMEC <queryResult> document, found <{name}>"),
                        )
                        .into());
                    }
                    seen_root = true;
                }
                let parent = path.last().map(String::as_str);
                match (parent, name.as_str()) {
                    (Some("images"), "image" | "deletedImage")
                    | (Some("videos"), "video" | "deletedVideo") => {
                        entries += 1;
                        entry = Some(Entry {
                            deleted: name.starts_with("deleted"),
                            ..Entry::default()
                        });
                    }
                    _ if entry.is_some() && path.len() == 3 => {
                        capture = match name.as_str() {
                            "id" => Capture::Id,
                            "classification" => Capture::Classification,
                            _ => Capture::None,
                        };
                        text.clear();
                    }
                    (Some("fingerprints"), _) if entry.is_some() => {
                        capture = Capture::Fingerprint;
                        fingerprint.clone_from(&name);
                        text.clear();
                    }
                    _ => capture = Capture::None,
                }
                path.push(name);
            }
            Event::Text(t) if capture != Capture::None => {
                let s = t
                    .decode()
                    .map_err(|e| Error::at(position, format!("bad text: {e}")))?;
                text.push_str(&s);
            }
            Event::CData(t) if capture != Capture::None => {
                text.push_str(&String::from_utf8_lossy(&t.into_inner()));
            }
            Event::GeneralRef(r) if capture != Capture::None => {
                let c = match r.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    _ => match r.as_ref() {
                        b"amp" => '&',
                        b"lt" => '<',
                        b"gt" => '>',
                        b"quot" => '"',
                        b"apos" => '\'',
                        other => {
                            return Err(Error::at(
                                position,
                                format!("unknown entity &{};", String::from_utf8_lossy(other)),
                            )
                            .into())
                        }
                    },
                };
                text.push(c);
            }
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                if text.len() > MAX_FIELD_BYTES {
                    return Err(Error::at(
                        position,
                        format!("<{name}> is longer than {MAX_FIELD_BYTES} bytes"),
                    )
                    .into());
                }
                if let Some(en) = entry.as_mut() {
                    match capture {
                        Capture::Id => en.id = text.trim().to_string(),
                        Capture::Classification => {
                            en.classification = text.trim().to_string();
                        }
                        Capture::Fingerprint if !text.trim().is_empty() => en
                            .fingerprints
                            .push((signal_type_for(&fingerprint), text.trim().to_string())),
                        _ => {}
                    }
                }
                capture = Capture::None;
                text.clear();
                let closes_entry = matches!(
                    name.as_str(),
                    "image" | "video" | "deletedImage" | "deletedVideo"
                ) && path.len() == 2;
                // `entry` is open only when this element opened under <images>/<videos>; an
                // <image> elsewhere (under <videos>, say) was no entry when it opened (the
                // Start arm ignores it), so its end closes nothing.
                let closed = if closes_entry { entry.take() } else { None };
                if let Some(en) = closed {
                    let position = Position::Entry {
                        entry: entries,
                        byte: xml.buffer_position(),
                    };
                    if en.id.is_empty() {
                        return Err(Error::at(position, format!("<{name}> without an <id>")).into());
                    }
                    let classification = Some(en.classification.as_str()).filter(|c| !c.is_empty());
                    if en.deleted {
                        sink(&Record {
                            position,
                            action: Action::WithdrawSourceId,
                            signal_type: "",
                            value: "",
                            source_id: Some(&en.id),
                            classification,
                            metadata: None,
                        })?;
                        passed += 1;
                    }
                    for (t, v) in &en.fingerprints {
                        sink(&Record {
                            position,
                            action: Action::List,
                            signal_type: t,
                            value: v,
                            source_id: Some(&en.id),
                            classification,
                            metadata: None,
                        })?;
                        passed += 1;
                    }
                }
            }
            Event::Empty(e) => {
                if !seen_root {
                    return Err(
                        Error::at(position, "expected an NCMEC <queryResult> document").into(),
                    );
                }
                // An empty fingerprint element is a by-reference fingerprint (href): skipped.
                let _ = e;
            }
            Event::Eof => {
                if !seen_root {
                    return Err(
                        Error::at(position, "empty document: expected <queryResult>").into(),
                    );
                }
                if !path.is_empty() {
                    return Err(Error::at(
                        position,
                        format!("document ends inside <{}>", path.join("><")),
                    )
                    .into());
                }
                return Ok(passed);
            }
            _ => {}
        }
        buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first test page of python-threatexchange's NCMEC client (benign placeholder values).
    const PAGE: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2">
    <images count="2" maxTimestamp="2017-10-24T15:10:00Z">
        <image>
            <member id="42">Example Member</member>
            <timestamp>2017-10-24T15:00:00Z</timestamp>
            <id>image1</id>
            <classification>A1</classification>
            <fingerprints>
                <md5>a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1</md5>
                <sha1>a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1</sha1>
            </fingerprints>
            <feedback lastUpdateTimestamp="2023-06-01T12:48:14Z">
                <affirmativeFeedback type="Md5" lastUpdateTimestamp="2023-06-01T12:48:14Z">
                <members timestamp="2023-06-01T12:48:14Z">
                    <member id="42">Example Member</member>
                </members>
                </affirmativeFeedback>
            </feedback>
        </image>
        <deletedImage>
            <member id="43">Example Member2</member>
            <id>image4</id>
            <timestamp>2017-10-24T15:10:00Z</timestamp>
        </deletedImage>
    </images>
    <videos count="2" maxTimestamp="2017-10-24T15:20:00Z">
        <video>
            <member id="42">Example Member</member>
            <timestamp>2017-10-24T15:00:00Z</timestamp>
            <id>video1</id>
            <fingerprints>
                <md5>b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1</md5>
                <tmk-pdqf rel="self" href="/v2/entries/1/fingerprints/TMK_PDQF"/>
            </fingerprints>
        </video>
    </videos>
    <paging>
        <next>/v2/entries?from=2017-10-20T00%3A00%3A00.000Z&amp;start=2001</next>
    </paging>
</queryResult>"#;

    type Row = (Action, String, String, Option<String>, Option<String>);

    fn collect(text: &str) -> Result<Vec<Row>, Error> {
        let mut out = Vec::new();
        read(text.as_bytes(), &mut |r: &Record<'_>| {
            out.push((
                r.action,
                r.signal_type.to_string(),
                r.value.to_string(),
                r.source_id.map(str::to_string),
                r.classification.map(str::to_string),
            ));
            Ok::<(), Error>(())
        })?;
        Ok(out)
    }

    #[test]
    fn fingerprint_names_map_to_signal_types() {
        // The NCMEC exchange uses this same function, so file import and exchange agree.
        for (f, t) in [
            ("md5", "md5"),
            ("sha1", "sha1"),
            ("pdq", "pdq"),
            ("pdna", "photodna"),
            ("tmk-pdqf", "tmk_pdqf"),
            ("Videntifier", "videntifier"),
        ] {
            assert_eq!(signal_type_for(f), t);
        }
    }

    #[test]
    fn reads_images_videos_and_deletions() {
        let got = collect(PAGE).unwrap();
        let a1 = Some("A1".to_string());
        assert_eq!(
            got,
            vec![
                (
                    Action::List,
                    "md5".into(),
                    "a1".repeat(16),
                    Some("image1".into()),
                    a1.clone()
                ),
                (
                    Action::List,
                    "sha1".into(),
                    "a1".repeat(20),
                    Some("image1".into()),
                    a1
                ),
                (
                    Action::WithdrawSourceId,
                    "".into(),
                    "".into(),
                    Some("image4".into()),
                    None
                ),
                (
                    Action::List,
                    "md5".into(),
                    "b1".repeat(16),
                    Some("video1".into()),
                    None
                ),
            ]
        );
    }

    /// Found by the `list_ncmec` fuzz target: an entry element closing where none was open
    /// (an `<image>` under `<videos>`) panicked on `expect("entry open")`.
    #[test]
    fn entry_elements_out_of_place_are_ignored() {
        let misplaced = PAGE.replace(
            "        <video>\n",
            "        <image><id>stray</id><fingerprints><md5>cc</md5></fingerprints></image>\n        <video>\n",
        );
        assert_ne!(misplaced, PAGE);
        assert_eq!(collect(&misplaced).unwrap(), collect(PAGE).unwrap());
        // The fuzzer's shape: an <image> at entry depth under an unknown element.
        let stray = r#"<queryResult><other><image><id>x</id></image></other></queryResult>"#;
        assert_eq!(collect(stray).unwrap(), vec![]);
    }

    #[test]
    fn malformed_pages_name_the_entry() {
        let broken = PAGE.replace("</sha1>", "</sha2>");
        let e = collect(&broken).unwrap_err();
        assert!(e.to_string().starts_with("entry 1 (byte "), "{e}");
        let e = collect("<status><x/></status>").unwrap_err();
        assert!(
            e.to_string().contains("expected an NCMEC <queryResult>"),
            "{e}"
        );
        let no_id = PAGE.replace("<id>video1</id>", "");
        let e = collect(&no_id).unwrap_err();
        assert!(
            e.to_string().contains("entry 3") && e.to_string().contains("without an <id>"),
            "{e}"
        );
        let truncated = &PAGE[..PAGE.len() - 30];
        assert!(collect(truncated).is_err());
    }
}
