//! The stable names of the small enums: one macro so that `as_str`, `parse`, `ALL` and serde
//! can never disagree about a spelling.

/// Defines a fieldless enum whose variants have stable snake_case names: `as_str`, `parse`,
/// `ALL`, `Display`, and serde (which uses the same names through `rename_all`, checked by the
/// unit test in each defining module).
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash,
            serde::Serialize, serde::Deserialize,
        )]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable name, as written in rules and shown by the API.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }

            /// Parses [`Self::as_str`]; `None` for anything else.
            pub fn parse(s: &str) -> Option<$name> {
                match s {
                    $( $text => Some($name::$variant), )+
                    _ => None,
                }
            }

            /// Position in [`Self::ALL`], for the per-value tables the compiled policy keeps.
            // Only the enums that rules test on (surface, age, kind) index tables.
            #[allow(dead_code)]
            pub(crate) fn index(self) -> usize {
                self as usize
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use named_enum;
