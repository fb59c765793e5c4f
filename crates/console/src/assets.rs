//! The console's stylesheet and script, compiled into the binary and served under names that
//! carry a hash of their content, so they can be cached for a year and a new release is
//! still picked up at once.

use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// The stylesheet.
pub const CSS: &str = include_str!("../assets/console.css");
/// The script (plain ES2020, no build step).
pub const JS: &str = include_str!("../assets/console.js");
/// Where the server mounts the assets; pages link `PREFIX` + the versioned name.
pub const PREFIX: &str = "/console/assets/";

/// An embedded file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    /// Its content.
    pub body: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
}

fn versioned(stem: &str, ext: &str, body: &str) -> String {
    let digest = hex::encode(Sha256::digest(body.as_bytes()));
    format!("{stem}-{}.{ext}", &digest[..16])
}

/// The stylesheet's versioned name, e.g. `console-0123456789abcdef.css`.
pub fn css_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| versioned("console", "css", CSS))
}

/// The script's versioned name, e.g. `console-0123456789abcdef.js`.
pub fn js_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| versioned("console", "js", JS))
}

/// The asset served under `name` (the part after [`PREFIX`]); only current versioned names
/// are known, so a stale name is a 404 rather than old content under a new hash.
pub fn by_name(name: &str) -> Option<Asset> {
    if name == css_name() {
        Some(Asset {
            body: CSS,
            content_type: "text/css; charset=utf-8",
        })
    } else if name == js_name() {
        Some(Asset {
            body: JS,
            content_type: "text/javascript; charset=utf-8",
        })
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_versioned_and_found() {
        assert!(css_name().starts_with("console-") && css_name().ends_with(".css"));
        assert_eq!(js_name().len(), "console-".len() + 16 + ".js".len());
        assert_eq!(by_name(css_name()).unwrap().body, CSS);
        assert_eq!(
            by_name(js_name()).unwrap().content_type,
            "text/javascript; charset=utf-8"
        );
        assert_eq!(by_name("console.css"), None);
    }

    #[test]
    fn stylesheet_has_every_blur_and_thumb_class() {
        let mut b = crate::settings::MIN_BLUR_PX;
        while b <= crate::settings::MAX_BLUR_PX {
            assert!(CSS.contains(&format!(".blur-{b} ")), "blur-{b}");
            b += crate::settings::BLUR_STEP_PX;
        }
        for t in crate::settings::THUMB_SIZES_PX {
            assert!(CSS.contains(&format!(".thumb-{t} ")), "thumb-{t}");
        }
        assert!(!CSS.contains("animation") && !CSS.contains("transition"));
    }
}
