//! A small XML writer: elements are written in the order the caller writes them (the model
//! writes them in the XSD's order), text and attribute values are escaped, and characters
//! XML 1.0 cannot carry at all are refused rather than silently dropped.

use crate::Error;

/// Builds one document. The first refused value is kept and returned by [`Writer::finish`],
/// so the model can write a whole report without checking every call.
pub(crate) struct Writer {
    out: String,
    /// Open elements, for the error path and the closing tags.
    stack: Vec<&'static str>,
    error: Option<Error>,
}

impl Writer {
    pub(crate) fn new() -> Writer {
        let mut out = String::with_capacity(4096);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
        Writer {
            out,
            stack: Vec::new(),
            error: None,
        }
    }

    /// The element path so far, `report/incidentSummary`, for error messages.
    pub(crate) fn path(&self, name: &str) -> String {
        let mut p = self.stack.join("/");
        if !p.is_empty() {
            p.push('/');
        }
        p.push_str(name);
        p
    }

    pub(crate) fn open(&mut self, name: &'static str) {
        self.open_with(name, &[]);
    }

    /// Opens `name` with attributes; attributes whose value is `None` are left out.
    pub(crate) fn open_with(&mut self, name: &'static str, attrs: &[(&str, Option<String>)]) {
        self.out.push('<');
        self.out.push_str(name);
        self.attrs(name, attrs);
        self.out.push('>');
        self.stack.push(name);
    }

    pub(crate) fn close(&mut self) {
        // Every close pairs with an open in the model's code; an empty stack is a bug there,
        // and writing nothing keeps the document's shape visible in the test that catches it.
        if let Some(name) = self.stack.pop() {
            self.out.push_str("</");
            self.out.push_str(name);
            self.out.push('>');
        }
    }

    /// `<name/>`, the form of NCMEC's flag elements.
    pub(crate) fn empty(&mut self, name: &'static str) {
        self.empty_with(name, &[]);
    }

    pub(crate) fn empty_with(&mut self, name: &'static str, attrs: &[(&str, Option<String>)]) {
        self.out.push('<');
        self.out.push_str(name);
        self.attrs(name, attrs);
        self.out.push_str("/>");
    }

    /// `<name>text</name>`.
    pub(crate) fn text(&mut self, name: &'static str, value: &str) {
        self.text_with(name, &[], value);
    }

    pub(crate) fn text_with(
        &mut self,
        name: &'static str,
        attrs: &[(&str, Option<String>)],
        value: &str,
    ) {
        self.open_with(name, attrs);
        let path = self.stack.join("/");
        self.escape_into(&path, value, false);
        self.close();
    }

    /// `<name>text</name>` when the value is present.
    pub(crate) fn opt(&mut self, name: &'static str, value: Option<&str>) {
        if let Some(v) = value {
            self.text(name, v);
        }
    }

    /// `<name>true|false</name>` when the value is present.
    pub(crate) fn opt_bool(&mut self, name: &'static str, value: Option<bool>) {
        if let Some(v) = value {
            self.text(name, if v { "true" } else { "false" });
        }
    }

    /// `<name>v</name>` for every value.
    pub(crate) fn many(&mut self, name: &'static str, values: &[String]) {
        for v in values {
            self.text(name, v);
        }
    }

    pub(crate) fn finish(self) -> Result<String, Error> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.out),
        }
    }

    fn attrs(&mut self, element: &str, attrs: &[(&str, Option<String>)]) {
        for (name, value) in attrs {
            if let Some(value) = value {
                self.out.push(' ');
                self.out.push_str(name);
                self.out.push_str("=\"");
                let path = format!("{}@{name}", self.path(element));
                self.escape_into(&path, value, true);
                self.out.push('"');
            }
        }
    }

    fn escape_into(&mut self, path: &str, value: &str, attribute: bool) {
        for c in value.chars() {
            match c {
                '&' => self.out.push_str("&amp;"),
                '<' => self.out.push_str("&lt;"),
                '>' => self.out.push_str("&gt;"),
                '"' if attribute => self.out.push_str("&quot;"),
                // In an attribute a raw tab or line break is normalised to a space by every
                // parser; as references they survive.
                '\t' if attribute => self.out.push_str("&#9;"),
                '\n' if attribute => self.out.push_str("&#10;"),
                '\r' => self.out.push_str("&#13;"),
                c if allowed(c) => self.out.push(c),
                c => {
                    if self.error.is_none() {
                        self.error = Some(Error::invalid(
                            path,
                            format!(
                                "contains U+{:04X}, a character XML 1.0 cannot carry",
                                u32::from(c)
                            ),
                        ));
                    }
                }
            }
        }
    }
}

/// The XML 1.0 `Char` production.
fn allowed(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_text_and_attributes() {
        let mut w = Writer::new();
        w.open("a");
        w.text_with(
            "b",
            &[("t", Some("x\"<&>\n".into()))],
            "1 < 2 & 3 > \"q\"\r",
        );
        w.close();
        let xml = w.finish().unwrap();
        assert!(xml.ends_with(
            "<a><b t=\"x&quot;&lt;&amp;&gt;&#10;\">1 &lt; 2 &amp; 3 &gt; \"q\"&#13;</b></a>"
        ));
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let b = doc.root_element().first_element_child().unwrap();
        assert_eq!(b.attribute("t"), Some("x\"<&>\n"));
        assert_eq!(b.text(), Some("1 < 2 & 3 > \"q\"\r"));
    }

    #[test]
    fn refuses_control_characters_with_the_path() {
        let mut w = Writer::new();
        w.open("report");
        w.text("additionalInfo", "bell\u{7}");
        w.close();
        let err = w.finish().unwrap_err().to_string();
        assert!(err.contains("report/additionalInfo"), "{err}");
        assert!(err.contains("U+0007"), "{err}");
    }
}
