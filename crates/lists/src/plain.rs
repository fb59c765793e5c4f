//! Plain lists: one hash per line, or `TYPE VALUE` (python-threatexchange's `dataset -P -S`
//! output). Blank lines and lines starting with `#` are skipped; surrounding whitespace and
//! CRLF line ends are ignored.

use std::io::BufRead;

use crate::{detect_type, read_line, Action, Error, Position, Record};

pub(crate) fn read<R: BufRead, E: From<Error>>(
    mut reader: R,
    declared: Option<&str>,
    sink: &mut dyn FnMut(&Record<'_>) -> Result<(), E>,
) -> Result<u64, E> {
    let mut buf = Vec::with_capacity(128);
    let mut line = 0u64;
    let mut passed = 0u64;
    loop {
        line += 1;
        if !read_line(&mut reader, &mut buf, line)? {
            return Ok(passed);
        }
        let position = Position::Line(line);
        let text = std::str::from_utf8(&buf)
            .map_err(|e| Error::at(position, format!("not UTF-8 text ({e})")))?
            .trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let mut fields = text.split_whitespace();
        // `text` is non-empty and trimmed, so it has a first field.
        let first = fields.next().expect("non-empty line");
        let (signal_type, value) = match (fields.next(), fields.next()) {
            (None, _) => match declared {
                Some(t) => (t, first),
                None => (
                    detect_type(first).map_err(|m| Error::at(position, m))?,
                    first,
                ),
            },
            (Some(value), None) => {
                if declared.is_some_and(|d| !d.eq_ignore_ascii_case(first)) {
                    return Err(Error::at(
                        position,
                        format!(
                            "the line says type {first:?} but --type is {:?}",
                            declared.unwrap_or_default()
                        ),
                    )
                    .into());
                }
                (first, value)
            }
            (Some(_), Some(_)) => {
                return Err(Error::at(
                    position,
                    "expected one hash (or TYPE HASH) per line, found more fields",
                )
                .into())
            }
        };
        sink(&Record {
            position,
            action: Action::List,
            signal_type,
            value,
            source_id: None,
            classification: None,
            metadata: None,
        })?;
        passed += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(text: &str, declared: Option<&str>) -> Result<Vec<(u64, String, String)>, Error> {
        let mut out = Vec::new();
        read(text.as_bytes(), declared, &mut |r: &Record<'_>| {
            let Position::Line(l) = r.position else {
                unreachable!("plain lists number lines")
            };
            out.push((l, r.signal_type.to_string(), r.value.to_string()));
            Ok::<(), Error>(())
        })?;
        Ok(out)
    }

    #[test]
    fn comments_blank_lines_types_and_detection() {
        let md5 = "d41d8cd98f00b204e9800998ecf8427e";
        let sha1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
        let text = format!("# a list\n\n  {md5}  \r\n{sha1}\npdq {}\n", "f".repeat(64));
        let got = collect(&text, None).unwrap();
        assert_eq!(
            got,
            vec![
                (3, "md5".into(), md5.into()),
                (4, "sha1".into(), sha1.into()),
                (5, "pdq".into(), "f".repeat(64)),
            ]
        );
    }

    #[test]
    fn errors_name_the_line() {
        let e = collect(&format!("{}\n\n{}\n", "a".repeat(32), "b".repeat(64)), None).unwrap_err();
        assert!(e.to_string().starts_with("line 3: a 64-digit value"), "{e}");
        let e = collect("a b c\n", Some("md5")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 1: expected one hash (or TYPE HASH) per line, found more fields"
        );
        let e = collect("sha1 abc\n", Some("md5")).unwrap_err();
        assert!(
            e.to_string().starts_with("line 1: the line says type"),
            "{e}"
        );
        let e = read(&b"ok\n\xff\xfe\n"[..], Some("md5"), &mut |_: &Record<
            '_,
        >| {
            Ok::<(), Error>(())
        })
        .unwrap_err();
        assert!(e.to_string().starts_with("line 2: not UTF-8"), "{e}");
    }

    #[test]
    fn declared_type_applies_to_every_line() {
        let got = collect(&format!("{}\n", "c".repeat(64)), Some("sha256")).unwrap();
        assert_eq!(got, vec![(1, "sha256".into(), "c".repeat(64))]);
    }
}
