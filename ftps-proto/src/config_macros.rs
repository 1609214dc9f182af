//! The `with_fields!` macro both sides' configuration types use.

/// `with_` methods, each setting one field and giving the value back, so that a
/// configuration reads as one expression from any crate (the types are
/// `#[non_exhaustive]`: fields may be added without breaking callers).
macro_rules! with_fields {
    ($ty:ident { $($with:ident: $field:ident: $t:ty),* $(,)? }) => {
        impl $ty {
            $(
                #[doc = concat!("Sets [`", stringify!($field), "`](Self::", stringify!($field), ").")]
                #[must_use]
                pub fn $with(mut self, value: $t) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}
