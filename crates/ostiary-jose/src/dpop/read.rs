//! A proof's header and claims read straight from their JSON into the members the checks use,
//! borrowing text from the decoded bytes where it has no escapes: no map of every member is
//! built. The rules are [`strict_json`](crate::strict_json)'s: one JSON object, no member
//! name repeated in it or in any object nested inside it (names compared after unescaping),
//! nesting bounded by `serde_json`'s recursion limit. Members the checks do not use are read
//! through and dropped.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A member's value as far as a proof's checks need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Loose<'a> {
    /// A string.
    Text(Cow<'a, str>),
    /// A number that is a non-negative integer.
    Unsigned(u64),
    /// Anything else: other numbers, `true`, `false`, `null`, arrays and objects (their
    /// contents checked for repeated names, then dropped).
    Other,
}

impl Loose<'_> {
    /// The text, if this is a string.
    pub(super) fn text(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text),
            _ => None,
        }
    }
}

/// The header members a proof's checks use (RFC 9449 §4.2).
#[derive(Debug, Default)]
pub(super) struct Header<'a> {
    pub(super) alg: Option<Loose<'a>>,
    pub(super) typ: Option<Loose<'a>>,
    /// `jwk`: `Some(None)` when present but not an object.
    pub(super) jwk: Option<Option<JwkMembers<'a>>>,
    /// `crit`, `b64`, `zip` or `enc` is present: they would change how the signature is
    /// computed.
    pub(super) refused: bool,
}

/// The members of the header's `jwk` that make up a public key.
#[derive(Debug, Default)]
pub(super) struct JwkMembers<'a> {
    pub(super) kty: Option<Loose<'a>>,
    pub(super) crv: Option<Loose<'a>>,
    pub(super) x: Option<Loose<'a>>,
    pub(super) y: Option<Loose<'a>>,
    pub(super) n: Option<Loose<'a>>,
    pub(super) e: Option<Loose<'a>>,
    pub(super) alg: Option<Loose<'a>>,
    /// A private or symmetric member (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`, `k`) is present.
    pub(super) private: bool,
}

/// The claims a proof's checks use (RFC 9449 §4.2).
#[derive(Debug, Default)]
pub(super) struct Claims<'a> {
    pub(super) jti: Option<Loose<'a>>,
    pub(super) htm: Option<Loose<'a>>,
    pub(super) htu: Option<Loose<'a>>,
    pub(super) iat: Option<Loose<'a>>,
    pub(super) ath: Option<Loose<'a>>,
    pub(super) nonce: Option<Loose<'a>>,
}

/// Reads `bytes` as one JSON object into `M`.
///
/// # Errors
/// The `serde_json` error for invalid JSON, a value that is not an object, or a repeated
/// member name at any depth; its text never quotes the input.
pub(super) fn object<'a, M: Members<'a>>(bytes: &'a [u8]) -> Result<M, serde_json::Error> {
    serde_json::from_slice::<Object<M>>(bytes).map(|object| object.0)
}

/// Where a member of a known object goes.
pub(super) enum Slot<'s, 'a> {
    /// Into this place.
    Value(&'s mut Option<Loose<'a>>),
    /// Into this place, read as a JWK.
    Jwk(&'s mut Option<Option<JwkMembers<'a>>>),
    /// Nowhere, but its presence sets this flag.
    Flag(&'s mut bool),
    /// Nowhere.
    Ignored,
}

/// An object whose members [`object`] reads by name.
pub(super) trait Members<'a>: Default {
    /// Where the member `name` goes.
    fn slot(&mut self, name: &str) -> Slot<'_, 'a>;
}

impl<'a> Members<'a> for Header<'a> {
    fn slot(&mut self, name: &str) -> Slot<'_, 'a> {
        match name {
            "alg" => Slot::Value(&mut self.alg),
            "typ" => Slot::Value(&mut self.typ),
            "jwk" => Slot::Jwk(&mut self.jwk),
            "crit" | "b64" | "zip" | "enc" => Slot::Flag(&mut self.refused),
            _ => Slot::Ignored,
        }
    }
}

impl<'a> Members<'a> for JwkMembers<'a> {
    fn slot(&mut self, name: &str) -> Slot<'_, 'a> {
        match name {
            "kty" => Slot::Value(&mut self.kty),
            "crv" => Slot::Value(&mut self.crv),
            "x" => Slot::Value(&mut self.x),
            "y" => Slot::Value(&mut self.y),
            "n" => Slot::Value(&mut self.n),
            "e" => Slot::Value(&mut self.e),
            "alg" => Slot::Value(&mut self.alg),
            "d" | "p" | "q" | "dp" | "dq" | "qi" | "oth" | "k" => Slot::Flag(&mut self.private),
            _ => Slot::Ignored,
        }
    }
}

impl<'a> Members<'a> for Claims<'a> {
    fn slot(&mut self, name: &str) -> Slot<'_, 'a> {
        match name {
            "jti" => Slot::Value(&mut self.jti),
            "htm" => Slot::Value(&mut self.htm),
            "htu" => Slot::Value(&mut self.htu),
            "iat" => Slot::Value(&mut self.iat),
            "ath" => Slot::Value(&mut self.ath),
            "nonce" => Slot::Value(&mut self.nonce),
            _ => Slot::Ignored,
        }
    }
}

/// Reads the members of the object `map` is at into `M`, refusing a repeated name.
fn read_members<'a, A: MapAccess<'a>, M: Members<'a>>(mut map: A) -> Result<M, A::Error> {
    let mut members = M::default();
    let mut names = BTreeSet::new();
    while let Some(Name(name)) = map.next_key()? {
        if names.contains(&name) {
            return Err(de::Error::custom("duplicate member name"));
        }
        match members.slot(&name) {
            Slot::Value(place) => *place = Some(map.next_value()?),
            Slot::Jwk(place) => *place = Some(map.next_value::<MaybeObject<JwkMembers>>()?.0),
            Slot::Flag(flag) => {
                map.next_value::<Loose>()?;
                *flag = true;
            }
            Slot::Ignored => {
                map.next_value::<Loose>()?;
            }
        }
        names.insert(name);
    }
    Ok(members)
}

/// A member name, borrowed when it has no escapes.
struct Name<'a>(Cow<'a, str>);

impl<'a> Deserialize<'a> for Name<'a> {
    fn deserialize<D: Deserializer<'a>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'a> Visitor<'a> for NameVisitor {
            type Value = Name<'a>;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, name: &'a str) -> Result<Name<'a>, E> {
                Ok(Name(Cow::Borrowed(name)))
            }
            fn visit_str<E>(self, name: &str) -> Result<Name<'a>, E> {
                Ok(Name(Cow::Owned(name.to_owned())))
            }
            fn visit_string<E>(self, name: String) -> Result<Name<'a>, E> {
                Ok(Name(Cow::Owned(name)))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

impl<'a> Deserialize<'a> for Loose<'a> {
    fn deserialize<D: Deserializer<'a>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LooseVisitor)
    }
}

struct LooseVisitor;

impl<'a> Visitor<'a> for LooseVisitor {
    type Value = Loose<'a>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value without repeated member names")
    }

    fn visit_borrowed_str<E>(self, text: &'a str) -> Result<Loose<'a>, E> {
        Ok(Loose::Text(Cow::Borrowed(text)))
    }

    fn visit_str<E>(self, text: &str) -> Result<Loose<'a>, E> {
        Ok(Loose::Text(Cow::Owned(text.to_owned())))
    }

    fn visit_string<E>(self, text: String) -> Result<Loose<'a>, E> {
        Ok(Loose::Text(Cow::Owned(text)))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Loose<'a>, E> {
        Ok(Loose::Unsigned(value))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Loose<'a>, E> {
        Ok(Loose::Other)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Loose<'a>, E> {
        Ok(Loose::Other)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Loose<'a>, E> {
        Ok(Loose::Other)
    }

    fn visit_unit<E>(self) -> Result<Loose<'a>, E> {
        Ok(Loose::Other)
    }

    fn visit_seq<A: SeqAccess<'a>>(self, mut seq: A) -> Result<Loose<'a>, A::Error> {
        while seq.next_element::<Loose>()?.is_some() {}
        Ok(Loose::Other)
    }

    fn visit_map<A: MapAccess<'a>>(self, map: A) -> Result<Loose<'a>, A::Error> {
        read_members::<A, Unused>(map).map(|_| Loose::Other)
    }
}

/// An object none of whose members is used.
#[derive(Default)]
struct Unused;

impl<'a> Members<'a> for Unused {
    fn slot(&mut self, _: &str) -> Slot<'_, 'a> {
        Slot::Ignored
    }
}

/// The top-level object.
struct Object<M>(M);

impl<'a, M: Members<'a>> Deserialize<'a> for Object<M> {
    fn deserialize<D: Deserializer<'a>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_map(ObjectVisitor(PhantomData))
            .map(Object)
    }
}

struct ObjectVisitor<M>(PhantomData<M>);

impl<'a, M: Members<'a>> Visitor<'a> for ObjectVisitor<M> {
    type Value = M;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object without repeated member names")
    }

    fn visit_map<A: MapAccess<'a>>(self, map: A) -> Result<M, A::Error> {
        read_members(map)
    }
}

/// A value that is read into `M` if it is an object (`None` for any other value, read
/// through as [`Loose`]).
struct MaybeObject<M>(Option<M>);

impl<'a, M: Members<'a>> Deserialize<'a> for MaybeObject<M> {
    fn deserialize<D: Deserializer<'a>>(deserializer: D) -> Result<Self, D::Error> {
        struct MaybeObjectVisitor<M>(PhantomData<M>);
        impl<'a, M: Members<'a>> Visitor<'a> for MaybeObjectVisitor<M> {
            type Value = MaybeObject<M>;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a JSON value without repeated member names")
            }
            fn visit_map<A: MapAccess<'a>>(self, map: A) -> Result<Self::Value, A::Error> {
                read_members(map).map(|members| MaybeObject(Some(members)))
            }
            fn visit_seq<A: SeqAccess<'a>>(self, seq: A) -> Result<Self::Value, A::Error> {
                LooseVisitor.visit_seq(seq).map(|_| MaybeObject(None))
            }
            fn visit_borrowed_str<E>(self, _: &'a str) -> Result<Self::Value, E> {
                Ok(MaybeObject(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(MaybeObject(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(MaybeObject(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(MaybeObject(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(MaybeObject(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(MaybeObject(None))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(MaybeObject(None))
            }
        }
        deserializer.deserialize_any(MaybeObjectVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_members_used_are_read_and_the_rest_dropped() {
        let text = br#"{"jti":"a\u00e9","htm":"GET","iat":1700000000,"ath":7,"nonce":null,
            "other":{"deep":[1,{"k":"v"}]},"htu":"https://x.example/"}"#;
        let claims: Claims = object(text).unwrap();
        assert_eq!(claims.jti, Some(Loose::Text("a\u{e9}".into())));
        assert_eq!(claims.htm.as_ref().and_then(Loose::text), Some("GET"));
        assert_eq!(claims.iat, Some(Loose::Unsigned(1_700_000_000)));
        assert_eq!(claims.ath, Some(Loose::Unsigned(7)));
        assert_eq!(claims.nonce, Some(Loose::Other));
        assert_eq!(
            claims.htu.as_ref().and_then(Loose::text),
            Some("https://x.example/")
        );
        for (number, expected) in [
            ("-1", Loose::Other),
            ("1.5", Loose::Other),
            ("1e3", Loose::Other),
            ("0", Loose::Unsigned(0)),
        ] {
            let text = format!(r#"{{"iat":{number}}}"#);
            let claims: Claims = object(text.as_bytes()).unwrap();
            assert_eq!(claims.iat, Some(expected), "{number}");
        }
    }

    #[test]
    fn a_jwk_is_read_when_it_is_an_object() {
        let header: Header =
            object(br#"{"alg":"ES256","jwk":{"kty":"EC","d":"x","use":"sig"},"zip":1}"#).unwrap();
        let jwk = header.jwk.unwrap().unwrap();
        assert_eq!(jwk.kty.as_ref().and_then(Loose::text), Some("EC"));
        assert!(jwk.private);
        assert!(header.refused);
        for not_object in [r#""text""#, "[{}]", "1", "null", "true"] {
            let text = format!(r#"{{"jwk":{not_object}}}"#);
            let header: Header = object(text.as_bytes()).unwrap();
            assert!(matches!(header.jwk, Some(None)), "{not_object}");
        }
        let header: Header = object(b"{}").unwrap();
        assert!(header.jwk.is_none() && !header.refused);
    }

    #[test]
    fn a_repeated_name_is_refused_at_any_depth_used_or_not() {
        for text in [
            &br#"{"jti":"a","jti":"a"}"#[..],
            br#"{"x":1,"x":2}"#,
            br#"{"jti":"a","\u006a\u0074\u0069":"b"}"#,
            br#"{"o":{"p":1,"p":1}}"#,
            br#"{"l":[[{"q":1,"q":2}]]}"#,
        ] {
            let error = object::<Claims>(text).unwrap_err();
            assert!(
                error.to_string().contains("duplicate member name"),
                "{error}"
            );
        }
        let error = object::<Header>(br#"{"jwk":{"kty":"EC","kty":"EC"}}"#).unwrap_err();
        assert!(
            error.to_string().contains("duplicate member name"),
            "{error}"
        );
        let error = object::<Header>(br#"{"jwk":[{"a":1,"a":1}]}"#).unwrap_err();
        assert!(
            error.to_string().contains("duplicate member name"),
            "{error}"
        );
        // The same name in sibling objects is no repeat.
        assert!(object::<Claims>(br#"{"a":{"x":1},"b":{"x":1}}"#).is_ok());
    }

    #[test]
    fn only_one_object_is_accepted_and_depth_is_bounded() {
        for text in [&b"[]"[..], b"1", b"\"{}\"", b"null", b"", b"{", b"{} {}"] {
            assert!(object::<Claims>(text).is_err());
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(5000), "]".repeat(5000));
        assert!(object::<Claims>(deep.as_bytes()).is_err());
        let error = object::<Claims>(br#"{"SECRET":1,"SECRET":2}"#).unwrap_err();
        assert!(!error.to_string().contains("SECRET"), "{error}");
    }
}
