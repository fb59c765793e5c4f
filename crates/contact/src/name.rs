//! The stable names of the small enums: one macro so that `as_str`, `parse`, `ALL`, `NAMES`
//! and serde can never disagree about a spelling.
//!
//! The serde impls are written by hand rather than derived because two of the age bands
//! (`13_15`, `16_17`) are not identifiers `rename_all` could produce, and because a refused
//! value should say what would have been accepted: the API turns these messages into 4xx
//! answers, and "expected one of ..." is what lets a caller fix the request.

/// The message for a name that is not one of `names`, shared by serde and the request
/// parser so that both say the same thing.
pub(crate) fn unknown(what: &str, value: &str, names: &[&str]) -> String {
    let expected = names.join(", ");
    // Names are lower case; a caller who sent `Adult` deserves the reason, not only the list.
    if names.iter().any(|n| n.eq_ignore_ascii_case(value)) {
        format!("unknown {what} `{value}`: names are lower case; expected one of {expected}")
    } else {
        format!("unknown {what} `{value}`; expected one of {expected}")
    }
}

/// Defines a fieldless enum whose variants have stable names: `ALL`, `NAMES`, `as_str`,
/// `parse`, `Display`, and (unless the `@core` form is used) serde as a plain string.
macro_rules! named_enum {
    (
        @core
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// Every stable name, in the order of [`Self::ALL`].
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// What the value is, in words, for error messages.
            pub(crate) const WHAT: &'static str = $what;

            /// The stable name, as written in requests, policies and answers.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }

            /// Parses [`Self::as_str`] exactly (names are case-sensitive); `None` for
            /// anything else.
            pub fn parse(s: &str) -> Option<$name> {
                match s {
                    $( $text => Some($name::$variant), )+
                    _ => None,
                }
            }

            /// The message for a value that is not one of [`Self::NAMES`].
            pub(crate) fn unknown_message(value: &str) -> String {
                crate::name::unknown(Self::WHAT, value, Self::NAMES)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        crate::name::named_enum! {
            @core
            $(#[$meta])*
            pub enum $name ($what) {
                $( $(#[$vmeta])* $variant => $text, )+
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                // An owned String, because a borrowed &str fails on JSON strings with escapes.
                let s = <String as serde::Deserialize>::deserialize(d)?;
                $name::parse(&s)
                    .ok_or_else(|| serde::de::Error::custom($name::unknown_message(&s)))
            }
        }
    };
}

pub(crate) use named_enum;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_lists_the_names() {
        assert_eq!(
            unknown("colour", "mauve", &["red", "blue"]),
            "unknown colour `mauve`; expected one of red, blue"
        );
    }

    #[test]
    fn unknown_explains_case() {
        assert_eq!(
            unknown("colour", "Red", &["red", "blue"]),
            "unknown colour `Red`: names are lower case; expected one of red, blue"
        );
    }
}
