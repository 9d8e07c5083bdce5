//! Just enough JSON output for the tools' `--json` mode (one object per line), without a
//! JSON crate: strings escaped per RFC 8259, bytes written as UTF-8 text when they are
//! valid UTF-8 and as base64-free lossy text otherwise.

use std::fmt::Write;

/// A JSON string literal for `s`.
pub(crate) fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `null`, or the bytes as a JSON string (invalid UTF-8 replaced).
pub(crate) fn bytes(b: Option<&[u8]>) -> String {
    match b {
        None => "null".to_string(),
        Some(b) => string(&String::from_utf8_lossy(b)),
    }
}

/// An object from already-encoded values.
pub(crate) fn object(fields: &[(&str, String)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", string(k)))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// An array from already-encoded values.
pub(crate) fn array(items: &[String]) -> String {
    format!("[{}]", items.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped() {
        assert_eq!(string("a\"b\\c\n\u{1}"), r#""a\"b\\c\n\u0001""#);
        assert_eq!(object(&[("k", bytes(None))]), r#"{"k":null}"#);
    }
}
