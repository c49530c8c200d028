//! Request ids: every response carries `x-request-id`, and the request's tracing span records
//! it (field `request_id`), so that a log line can be matched with a response, and the log
//! lines of one request with each other.
//!
//! An incoming `x-request-id` (set by a proxy or a client, to follow a request across
//! services) is kept if it is one header of 1 to [`MAX_LEN`] visible ASCII characters;
//! otherwise it is dropped and a fresh UUID (v4) is used. The id is not trusted for anything
//! but correlation.

use http::{HeaderName, HeaderValue, Request};

/// The header: `x-request-id`.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest incoming request id kept, in bytes.
pub const MAX_LEN: usize = 128;

/// Whether an incoming request id is kept: 1 to [`MAX_LEN`] visible ASCII characters (no
/// spaces, no control characters), so that it cannot forge or break a log line.
pub fn is_acceptable(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty() && bytes.len() <= MAX_LEN && bytes.iter().all(|b| b.is_ascii_graphic())
}

/// Removes an incoming request id that is not acceptable (or is repeated), so that a fresh
/// one is generated for the request. Runs before `tower_http`'s `SetRequestIdLayer`.
pub fn drop_unacceptable<B>(mut request: Request<B>) -> Request<B> {
    let headers = request.headers_mut();
    let mut values = headers.get_all(&HEADER).iter();
    let keep = match (values.next(), values.next()) {
        (Some(value), None) => is_acceptable(value),
        (None, _) => true,
        (Some(_), Some(_)) => false,
    };
    if !keep {
        headers.remove(&HEADER);
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(values: &[&[u8]]) -> Request<()> {
        let mut request = Request::new(());
        for value in values {
            request
                .headers_mut()
                .append(HEADER, HeaderValue::from_bytes(value).unwrap());
        }
        request
    }

    #[test]
    fn a_visible_bounded_id_is_kept_and_others_are_dropped() {
        let kept = drop_unacceptable(request(&[b"edge-7f3a:42"]));
        assert_eq!(kept.headers()[HEADER], "edge-7f3a:42");
        for bad in [
            &b""[..],
            b"two words",
            b"tab\tbed",
            b"\xffopaque",
            &[b'x'; 129],
        ] {
            let dropped = drop_unacceptable(request(&[bad]));
            assert!(dropped.headers().get(HEADER).is_none(), "{bad:?}");
        }
        let repeated = drop_unacceptable(request(&[b"a", b"b"]));
        assert!(repeated.headers().get(HEADER).is_none());
        assert!(drop_unacceptable(request(&[])).headers().is_empty());
        assert!(is_acceptable(
            &HeaderValue::from_bytes(&[b'x'; 128]).unwrap()
        ));
    }
}
