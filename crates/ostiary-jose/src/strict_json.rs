//! JSON objects whose member names are unique, at every depth.
//!
//! RFC 7515 §5.2 and RFC 7519 §7.2 let a recipient either reject a header or claims set with
//! duplicate member names or keep the last one; `serde_json` keeps the last one. Two JSON
//! parsers that resolve a duplicate differently read two different tokens out of the same
//! signed bytes (`{"sub":"alice","sub":"admin"}`), so Ostiary rejects duplicates wherever it
//! reads a JOSE header or claims set: the IdP reading its own tokens back and DPoP proofs,
//! `ostiary-verify` reading access tokens.
//!
//! DPoP proofs are read with the same rules by `dpop::read`, straight into the members their
//! checks use. Here, the check is a `serde` visitor building the same [`Value`] that
//! `serde_json` would, but failing on a member name it has already seen in the same object.
//! Names are compared after unescaping, so `"a"` and `"\u0061"` are the same name. Nesting depth stays bounded by
//! `serde_json`'s recursion limit (128), so deep input is an error, never a stack overflow.
//! Numbers arrive as `i64`/`u64`/`f64`, which holds as long as `serde_json`'s
//! `arbitrary_precision` feature is off (it is: nothing in the workspace enables it).

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};

/// Parses `bytes` as one JSON object, refusing a repeated member name in it or in any object
/// nested inside it.
///
/// # Errors
/// The `serde_json` error for invalid JSON, a value that is not an object, or a duplicate
/// member name. Its text never quotes the input (nor the duplicated name).
pub fn object_from_slice(bytes: &[u8]) -> Result<Map<String, Value>, serde_json::Error> {
    match serde_json::from_slice::<Unique>(bytes)?.0 {
        Value::Object(object) => Ok(object),
        _ => Err(de::Error::custom("expected a JSON object")),
    }
}

/// A JSON value without duplicate member names in any of its objects.
struct Unique(Value);

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueVisitor).map(Unique)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value without duplicate member names")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Value, E> {
        // `serde_json` never produces a non-finite number when parsing; refuse one anyway
        // rather than turn it into `null`.
        Number::from_f64(value)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Unique::deserialize(deserializer).map(|unique| unique.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Unique(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            match object.entry(name) {
                Entry::Occupied(_) => return Err(de::Error::custom("duplicate member name")),
                Entry::Vacant(entry) => {
                    let Unique(value) = map.next_value()?;
                    entry.insert(value);
                }
            }
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_duplicates_it_reads_what_serde_json_reads() {
        let text = br#"{"s":"x\u00e9\"","i":-7,"u":18446744073709551615,"f":1.5e3,"t":true,
            "n":null,"a":[1,[2,{"k":"v"}],{}],"o":{"p":{"q":[]}},"":0}"#;
        let expected: Map<String, Value> = serde_json::from_slice(text).unwrap();
        assert_eq!(object_from_slice(text).unwrap(), expected);
    }

    #[test]
    fn a_repeated_name_is_refused_at_any_depth() {
        for text in [
            &br#"{"a":1,"a":1}"#[..],
            br#"{"a":1,"b":2,"a":3}"#,
            br#"{"a":1,"\u0061":2}"#,
            br#"{"o":{"x":1,"x":2}}"#,
            br#"{"l":[{"ok":1},{"x":1,"x":{}}]}"#,
            br#"{"d":{"e":{"f":[[{"g":null,"g":null}]]}}}"#,
        ] {
            let error = object_from_slice(text).unwrap_err();
            assert!(
                error.to_string().contains("duplicate member name"),
                "{error}"
            );
        }
        // The same name in sibling objects is no duplicate.
        assert!(object_from_slice(br#"{"a":{"x":1},"b":{"x":1}}"#).is_ok());
    }

    #[test]
    fn only_objects_are_accepted_and_depth_is_bounded() {
        for text in [&b"[]"[..], b"1", b"\"{}\"", b"null", b"", b"{", b"{} {}"] {
            assert!(object_from_slice(text).is_err());
        }
        let deep = format!("{}{}", "{\"a\":[".repeat(5000), "]}".repeat(5000));
        assert!(object_from_slice(deep.as_bytes()).is_err());
    }

    #[test]
    fn the_error_never_quotes_the_input() {
        let error = object_from_slice(br#"{"SECRET":1,"SECRET":2}"#).unwrap_err();
        assert!(!error.to_string().contains("SECRET"), "{error}");
    }
}
