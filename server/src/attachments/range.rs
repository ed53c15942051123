//! `Range: bytes=...` of a download (RFC 9110 §14): one range, or the whole file.

use std::ops::Range;

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// No usable Range header (absent, not `bytes`, several ranges, malformed): the whole file.
    Whole,
    /// These bytes (half-open), answered with 206.
    Part(Range<u64>),
    /// Nothing of the file can be served: 416 with `Content-Range: bytes */size`.
    Unsatisfiable,
}

/// Parses a `Range` header value against a file of `size` bytes.
pub fn parse(header: Option<&str>, size: u64) -> Ask {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ask::Whole;
    };
    if spec.contains(',') {
        // Several ranges would need multipart/byteranges; a server may send the whole file.
        return Ask::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ask::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match (first.is_empty(), number(first), number(last)) {
        // `bytes=-N`: the last N bytes.
        (true, _, Some(n)) => {
            if n == 0 || size == 0 {
                Ask::Unsatisfiable
            } else {
                Ask::Part(size.saturating_sub(n)..size)
            }
        }
        // `bytes=A-` and `bytes=A-B`.
        (false, Some(a), b) if last.is_empty() || b.is_some() => {
            if b.is_some_and(|b| b < a) {
                return Ask::Whole;
            }
            if a >= size {
                return Ask::Unsatisfiable;
            }
            let end = b.map_or(size, |b| b.saturating_add(1).min(size));
            Ask::Part(a..end)
        }
        _ => Ask::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse(None, 10), Ask::Whole);
        assert_eq!(parse(Some("bytes=0-3"), 10), Ask::Part(0..4));
        assert_eq!(parse(Some("bytes=4-"), 10), Ask::Part(4..10));
        assert_eq!(parse(Some("bytes=-3"), 10), Ask::Part(7..10));
        assert_eq!(parse(Some("bytes=-30"), 10), Ask::Part(0..10));
        assert_eq!(parse(Some("bytes=5-100"), 10), Ask::Part(5..10));
        assert_eq!(parse(Some("bytes=10-"), 10), Ask::Unsatisfiable);
        assert_eq!(parse(Some("bytes=-0"), 10), Ask::Unsatisfiable);
        assert_eq!(parse(Some("bytes=0-1,3-4"), 10), Ask::Whole);
        assert_eq!(parse(Some("bytes=5-2"), 10), Ask::Whole);
        assert_eq!(parse(Some("items=0-1"), 10), Ask::Whole);
        assert_eq!(parse(Some("bytes=x-1"), 10), Ask::Whole);
        assert_eq!(parse(Some("bytes=0-0"), 0), Ask::Unsatisfiable);
    }
}
