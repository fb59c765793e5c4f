//! How media is shown: blurred, greyscale, small, until someone chooses to look. Settings are
//! layered defaults < org < queue < harm < user, each layer a partial [`ViewOverrides`] stored
//! as JSON. The user layer comes last because each reviewer knows what they can bear (they
//! may turn greyscale off for themselves); what no layer can do is blur less than
//! [`MIN_BLUR_PX`], autoplay video or play its sound.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Weakest blur, px: below about 10 px at thumbnail size, content becomes recognisable.
pub const MIN_BLUR_PX: u32 = 10;
/// Strongest blur, px: beyond this the thumbnail is a flat colour and gives no cue at all.
pub const MAX_BLUR_PX: u32 = 32;
/// Blur steps, px; the stylesheet has one class per step (`blur-10` ... `blur-32`), so pages
/// need no `style` attributes (the CSP forbids them).
pub const BLUR_STEP_PX: u32 = 2;
/// Thumbnail sizes, px, one class each (`thumb-80` ... `thumb-320`).
pub const THUMB_SIZES_PX: [u32; 7] = [80, 120, 160, 200, 240, 280, 320];

/// The settings in force for one viewer, queue and harm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ViewSettings {
    /// Show media without colour (blood, skin tones carry much of the impact).
    pub greyscale: bool,
    /// Blur while not revealed, px: even, [`MIN_BLUR_PX`]..=[`MAX_BLUR_PX`].
    pub blur_px: u32,
    /// Thumbnail edge, px: one of [`THUMB_SIZES_PX`].
    pub thumb_px: u32,
    /// Images as the server's stylised copy (small, greyscale, four tones) instead of the
    /// original, at lower contrast even when revealed.
    pub reduced_detail: bool,
    /// Always false: video never starts by itself.
    pub autoplay: bool,
    /// Always true: sound is often the most distressing part, and off is the only safe start.
    pub muted: bool,
}

impl Default for ViewSettings {
    fn default() -> ViewSettings {
        ViewSettings {
            greyscale: true,
            blur_px: 16,
            thumb_px: 160,
            reduced_detail: false,
            autoplay: false,
            muted: true,
        }
    }
}

impl ViewSettings {
    /// The classes for a media element in its resting (blurred) state, e.g.
    /// `blurred blur-16 greyscale thumb thumb-160`.
    pub fn media_classes(&self) -> String {
        let mut c = format!("blurred blur-{}", self.blur_px);
        if self.greyscale {
            c.push_str(" greyscale");
        }
        c.push_str(&format!(" thumb thumb-{}", self.thumb_px));
        if self.reduced_detail {
            c.push_str(" reduced-detail");
        }
        c
    }
}

/// One layer of settings; `None` leaves the layer below in force. Unknown keys (such as
/// `autoplay`) are refused rather than ignored, so nobody believes they turned something on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ViewOverrides {
    /// See [`ViewSettings::greyscale`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub greyscale: Option<bool>,
    /// See [`ViewSettings::blur_px`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blur_px: Option<u32>,
    /// See [`ViewSettings::thumb_px`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thumb_px: Option<u32>,
    /// See [`ViewSettings::reduced_detail`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reduced_detail: Option<bool>,
}

impl ViewOverrides {
    /// Parses and validates a stored or submitted JSON layer.
    pub fn from_json(json: &str) -> Result<ViewOverrides> {
        let o: ViewOverrides = serde_json::from_str(json).map_err(|e| Error::InvalidSetting {
            field: "json",
            reason: e.to_string(),
        })?;
        o.validate()?;
        Ok(o)
    }

    /// The layer as JSON for the store.
    pub fn to_json(&self) -> String {
        #[allow(clippy::unwrap_used)] // Four optional scalars always serialise.
        serde_json::to_string(self).unwrap()
    }

    /// Reads the settings form (field, value pairs as posted): checkboxes `greyscale` and
    /// `reduced_detail` (absent means off, as browsers send nothing for an unticked box),
    /// numbers `blur_px` and `thumb_px`.
    pub fn from_form(pairs: &[(String, String)]) -> Result<ViewOverrides> {
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let number = |field: &'static str| -> Result<Option<u32>> {
            get(field)
                .filter(|v| !v.is_empty())
                .map(|v| {
                    v.trim().parse().map_err(|_| Error::InvalidSetting {
                        field,
                        reason: "must be a whole number".into(),
                    })
                })
                .transpose()
        };
        let o = ViewOverrides {
            greyscale: Some(get("greyscale").is_some()),
            blur_px: number("blur_px")?,
            thumb_px: number("thumb_px")?,
            reduced_detail: Some(get("reduced_detail").is_some()),
        };
        o.validate()?;
        Ok(o)
    }

    /// Checks the ranges: blur even in [`MIN_BLUR_PX`]..=[`MAX_BLUR_PX`], thumbnail one of
    /// [`THUMB_SIZES_PX`].
    pub fn validate(&self) -> Result<()> {
        if let Some(b) = self.blur_px {
            if !(MIN_BLUR_PX..=MAX_BLUR_PX).contains(&b) || b % BLUR_STEP_PX != 0 {
                return Err(Error::InvalidSetting {
                    field: "blur_px",
                    reason: format!("must be an even number from {MIN_BLUR_PX} to {MAX_BLUR_PX}"),
                });
            }
        }
        if let Some(t) = self.thumb_px {
            if !THUMB_SIZES_PX.contains(&t) {
                return Err(Error::InvalidSetting {
                    field: "thumb_px",
                    reason: format!("must be one of {THUMB_SIZES_PX:?}"),
                });
            }
        }
        Ok(())
    }
}

/// The settings in force: defaults, then each present layer in order org, queue, harm, user.
/// Values are forced into range afterwards (blur up to at least [`MIN_BLUR_PX`], thumbnail to
/// the nearest size), so a layer stored before validation existed, or written around it,
/// still cannot weaken the blur.
pub fn resolve(
    org: Option<&ViewOverrides>,
    queue: Option<&ViewOverrides>,
    harm: Option<&ViewOverrides>,
    user: Option<&ViewOverrides>,
) -> ViewSettings {
    let mut s = ViewSettings::default();
    for layer in [org, queue, harm, user].into_iter().flatten() {
        s.greyscale = layer.greyscale.unwrap_or(s.greyscale);
        s.blur_px = layer.blur_px.unwrap_or(s.blur_px);
        s.thumb_px = layer.thumb_px.unwrap_or(s.thumb_px);
        s.reduced_detail = layer.reduced_detail.unwrap_or(s.reduced_detail);
    }
    s.blur_px = s
        .blur_px
        .clamp(MIN_BLUR_PX, MAX_BLUR_PX)
        .next_multiple_of(BLUR_STEP_PX);
    #[allow(clippy::unwrap_used)] // THUMB_SIZES_PX is not empty.
    let thumb = THUMB_SIZES_PX
        .into_iter()
        .min_by_key(|t| t.abs_diff(s.thumb_px))
        .unwrap();
    s.thumb_px = thumb;
    s.autoplay = false;
    s.muted = true;
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(json: &str) -> ViewOverrides {
        ViewOverrides::from_json(json).unwrap()
    }

    #[test]
    fn layers_apply_in_order() {
        assert_eq!(resolve(None, None, None, None), ViewSettings::default());
        let org = o(r#"{"blur_px": 20, "thumb_px": 120}"#);
        let queue = o(r#"{"blur_px": 24}"#);
        let harm = o(r#"{"blur_px": 28, "reduced_detail": true}"#);
        let user = o(r#"{"greyscale": false, "blur_px": 12}"#);
        let s = resolve(Some(&org), Some(&queue), None, None);
        assert_eq!((s.blur_px, s.thumb_px), (24, 120));
        let s = resolve(Some(&org), Some(&queue), Some(&harm), None);
        assert_eq!((s.blur_px, s.reduced_detail, s.greyscale), (28, true, true));
        let s = resolve(Some(&org), Some(&queue), Some(&harm), Some(&user));
        assert_eq!((s.blur_px, s.greyscale, s.thumb_px), (12, false, 120));
        assert!(!s.autoplay && s.muted);
    }

    #[test]
    fn blur_never_below_ten() {
        assert!(ViewOverrides::from_json(r#"{"blur_px": 8}"#).is_err());
        assert!(ViewOverrides::from_json(r#"{"blur_px": 0}"#).is_err());
        assert!(ViewOverrides::from_json(r#"{"blur_px": 11}"#).is_err());
        assert!(ViewOverrides::from_json(r#"{"blur_px": 34}"#).is_err());
        assert!(ViewOverrides::from_json(r#"{"thumb_px": 100}"#).is_err());
        assert!(ViewOverrides::from_json(r#"{"autoplay": true}"#).is_err());
        assert!(ViewOverrides::from_json(r#"{"blur_px": "x"}"#).is_err());
        // Written around validation: still forced up.
        let sneaky = ViewOverrides {
            blur_px: Some(2),
            thumb_px: Some(1000),
            ..Default::default()
        };
        let s = resolve(None, None, None, Some(&sneaky));
        assert_eq!((s.blur_px, s.thumb_px), (10, 320));
        let odd = ViewOverrides {
            blur_px: Some(13),
            ..Default::default()
        };
        assert_eq!(resolve(Some(&odd), None, None, None).blur_px, 14);
    }

    #[test]
    fn json_and_form_round_trip() {
        let x = o(r#"{"greyscale": false, "blur_px": 18}"#);
        assert_eq!(x.to_json(), r#"{"greyscale":false,"blur_px":18}"#);
        assert_eq!(ViewOverrides::from_json(&x.to_json()).unwrap(), x);
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let f = ViewOverrides::from_form(&pairs(&[
            ("csrf", "t"),
            ("blur_px", "20"),
            ("greyscale", "on"),
        ]))
        .unwrap();
        assert_eq!(f.greyscale, Some(true));
        assert_eq!(f.reduced_detail, Some(false));
        assert_eq!(f.blur_px, Some(20));
        assert!(ViewOverrides::from_form(&pairs(&[("blur_px", "4")])).is_err());
        assert!(ViewOverrides::from_form(&pairs(&[("thumb_px", "big")])).is_err());
    }

    #[test]
    fn classes() {
        let s = ViewSettings {
            reduced_detail: true,
            ..Default::default()
        };
        assert_eq!(
            s.media_classes(),
            "blurred blur-16 greyscale thumb thumb-160 reduced-detail"
        );
    }
}
