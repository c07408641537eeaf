//! `s3://BUCKET/KEY` and `s3://BUCKET[/PREFIX]` arguments.

/// A parsed `s3://` URL: the bucket and the rest (a key or a prefix, possibly empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    pub key: String,
}

/// Parses `s3://BUCKET/KEY`; `key_required` refuses an empty key (objects, not prefixes).
pub fn parse(s: &str, key_required: bool) -> Result<S3Url, String> {
    let rest = s.strip_prefix("s3://").ok_or_else(|| format!("not an s3:// URL: {s}"))?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(format!("no bucket in {s}"));
    }
    if key_required && key.is_empty() {
        return Err(format!("no object key in {s} (s3://BUCKET/KEY)"));
    }
    Ok(S3Url { bucket: bucket.into(), key: key.into() })
}

/// An object argument (`s3://BUCKET/KEY`), for clap.
pub fn object(s: &str) -> Result<S3Url, String> {
    parse(s, true)
}

/// A prefix argument (`s3://BUCKET[/PREFIX]`), for clap.
pub fn prefix(s: &str) -> Result<S3Url, String> {
    parse(s, false)
}

/// `x-amz-copy-source`: `bucket/key`, percent-encoded except for unreserved characters and `/`.
pub fn copy_source(bucket: &str, key: &str) -> String {
    encode(&format!("{bucket}/{key}"))
}

/// Percent-encoded except for unreserved characters and `/`: S3's URL encoding of keys
/// (`x-amz-copy-source`, and listings asked for with `encoding-type=url`).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_objects_and_prefixes() {
        assert_eq!(object("s3://b/a/k").unwrap(), S3Url { bucket: "b".into(), key: "a/k".into() });
        assert_eq!(prefix("s3://b").unwrap(), S3Url { bucket: "b".into(), key: String::new() });
        assert!(object("s3://b/").is_err());
        assert!(object("b/k").is_err());
        assert!(prefix("s3:///k").is_err());
        assert_eq!(copy_source("b", "a b/ü"), "b/a%20b/%C3%BC");
    }
}
