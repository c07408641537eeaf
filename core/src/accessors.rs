//! Declarative accessors for plain fields, so a getter or `with_*` setter is written once as
//! what it returns and not again as the same five lines of boilerplate in every type.

/// `#[must_use] pub fn name(&self) -> Type { body }` for each entry, its doc comment kept.
/// The receiver is named by the caller (`self;`) so the bodies may use it.
macro_rules! getters {
    ($s:ident; $($(#[$attr:meta])* $name:ident -> $ty:ty { $body:expr })+) => {
        $(
            $(#[$attr])*
            #[must_use]
            pub fn $name(&$s) -> $ty {
                $body
            }
        )+
    };
}

/// `#[must_use] pub const fn with_field(mut self, v: Type) -> Self` for each entry: the value
/// with one public field replaced, so a non-exhaustive record can still be built by callers.
macro_rules! with_setters {
    ($($(#[$attr:meta])* $name:ident => $field:ident: $ty:ty;)+) => {
        $(
            $(#[$attr])*
            #[must_use]
            pub const fn $name(mut self, v: $ty) -> Self {
                self.$field = v;
                self
            }
        )+
    };
}

/// `From<[u8; N]>` and `TryFrom<&[u8]>` (exactly `N` bytes) for a newtype over a byte array.
macro_rules! byte_array_conversions {
    ($t:ident, $n:expr) => {
        impl From<[u8; $n]> for $t {
            fn from(bytes: [u8; $n]) -> Self {
                Self(bytes)
            }
        }

        impl TryFrom<&[u8]> for $t {
            type Error = $crate::error::Error;

            /// # Errors
            /// [`Error::InvalidParameter`](crate::Error::InvalidParameter) unless the slice
            /// has exactly the array's length.
            fn try_from(bytes: &[u8]) -> $crate::error::Result<Self> {
                bytes.try_into().map(Self).map_err(|_| $crate::error::Error::InvalidParameter)
            }
        }
    };
}
