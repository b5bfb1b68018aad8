//! The two impls every secret-holding type needs, written once: a `Debug` that prints no secret
//! (`Name { .. }`, or only the named public fields) and a `Drop` that zeroizes the named secret
//! fields. A type whose secrets all implement `ZeroizeOnDrop` derives that instead and uses only
//! [`redacted_debug!`].

/// `impl Debug for $name` printing `$name { .. }`, or `$name { field: .., .. }` with only the
/// listed (public, non-secret) fields.
macro_rules! redacted_debug {
    ($name:ident) => {
        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(concat!(stringify!($name), " { .. }"))
            }
        }
    };
    ($name:ident { $($field:ident),+ $(,)? }) => {
        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(stringify!($name))
                    $(.field(stringify!($field), &self.$field))+
                    .finish_non_exhaustive()
            }
        }
    };
}

/// `impl Drop for $name` zeroizing the listed fields (the ones not already erased by their own
/// `ZeroizeOnDrop`).
macro_rules! zeroize_on_drop {
    ($name:ident { $($field:ident),+ $(,)? }) => {
        impl Drop for $name {
            fn drop(&mut self) {
                $(::zeroize::Zeroize::zeroize(&mut self.$field);)+
            }
        }
    };
}

pub(crate) use {redacted_debug, zeroize_on_drop};

#[cfg(test)]
mod tests {
    struct Key {
        public: u8,
        secret: [u8; 4],
    }
    redacted_debug!(Key { public });

    struct Opaque;
    redacted_debug!(Opaque);

    #[test]
    fn debug_prints_only_public_fields() {
        let k = Key {
            public: 7,
            secret: [9; 4],
        };
        assert_eq!(format!("{k:?}"), "Key { public: 7, .. }");
        assert_eq!(k.secret, [9; 4]);
        assert_eq!(format!("{:?}", Opaque), "Opaque { .. }");
    }

    thread_local!(static ERASED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });

    /// A secret that records being erased.
    struct Recorder;
    impl zeroize::Zeroize for Recorder {
        fn zeroize(&mut self) {
            ERASED.with(|e| e.set(true));
        }
    }

    struct Holder {
        secret: Recorder,
    }
    zeroize_on_drop!(Holder { secret });

    #[test]
    fn drop_zeroizes_the_listed_fields() {
        let h = Holder { secret: Recorder };
        assert!(!ERASED.with(|e| e.get()));
        drop(h);
        assert!(ERASED.with(|e| e.get()));
    }
}
