//! Writing vim25 request envelopes.
//!
//! Requests are small, so they are built as one `String`. The writer is
//! deliberately dumb: callers emit elements in WSDL `sequence` order (real
//! vCenter is strict about it even though vcsim is not), and the writer only
//! guarantees well-formed, escaped XML.

use crate::Error;
use crate::moref::MoRef;

/// The SOAP 1.1 envelope namespace.
pub const SOAPENV_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// The XML Schema instance namespace (home of `xsi:type`).
pub const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";
/// The vim25 namespace used for every request and response element.
pub const VIM25_NS: &str = "urn:vim25";

/// A request body under construction: `<METHOD xmlns="urn:vim25"><_this …/>…`.
#[derive(Debug)]
pub struct Request {
    method: &'static str,
    buf: String,
}

impl Request {
    /// Starts a call of `method` on the managed object `this`.
    pub fn new(method: &'static str, this: &MoRef) -> Self {
        let mut buf = String::with_capacity(512);
        buf.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
        buf.push_str(r#"<soapenv:Envelope xmlns:soapenv=""#);
        buf.push_str(SOAPENV_NS);
        buf.push_str(r#"" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi=""#);
        buf.push_str(XSI_NS);
        buf.push_str(r#""><soapenv:Body><"#);
        buf.push_str(method);
        buf.push_str(r#" xmlns="urn:vim25">"#);
        let mut req = Request { method, buf };
        req.moref("_this", this);
        req
    }

    /// The method name, for error messages.
    pub fn method(&self) -> &'static str {
        self.method
    }

    /// `<tag type="Kind">value</tag>`.
    pub fn moref(&mut self, tag: &str, r: &MoRef) {
        self.buf.push('<');
        self.buf.push_str(tag);
        self.buf.push_str(r#" type=""#);
        escape_into(&mut self.buf, r.kind());
        self.buf.push_str(r#"">"#);
        escape_into(&mut self.buf, r.value());
        self.close(tag);
    }

    /// `<tag>escaped text</tag>`. Fails on characters XML 1.0 cannot carry.
    pub fn text(&mut self, tag: &str, value: &str) -> Result<(), Error> {
        check_xml_chars(tag, value)?;
        self.open(tag);
        escape_into(&mut self.buf, value);
        self.close(tag);
        Ok(())
    }

    /// `<tag>true|false</tag>`.
    pub fn bool(&mut self, tag: &str, value: bool) {
        self.open(tag);
        self.buf.push_str(if value { "true" } else { "false" });
        self.close(tag);
    }

    /// `<tag>123</tag>`.
    pub fn int(&mut self, tag: &str, value: i64) {
        self.open(tag);
        self.buf.push_str(&value.to_string());
        self.close(tag);
    }

    /// Opens `<tag>`.
    pub fn open(&mut self, tag: &str) {
        self.buf.push('<');
        self.buf.push_str(tag);
        self.buf.push('>');
    }

    /// Opens `<tag xsi:type="Type">` for a polymorphic value.
    pub fn open_typed(&mut self, tag: &str, xsi_type: &str) {
        self.buf.push('<');
        self.buf.push_str(tag);
        self.buf.push_str(r#" xsi:type=""#);
        escape_into(&mut self.buf, xsi_type);
        self.buf.push_str(r#"">"#);
    }

    /// `<tag xsi:type="Type">escaped text</tag>`, e.g. an `xsd:string` in an `anyType` slot.
    pub fn typed_text(&mut self, tag: &str, xsi_type: &str, value: &str) -> Result<(), Error> {
        check_xml_chars(tag, value)?;
        self.open_typed(tag, xsi_type);
        escape_into(&mut self.buf, value);
        self.close(tag);
        Ok(())
    }

    /// Closes `</tag>`.
    pub fn close(&mut self, tag: &str) {
        self.buf.push_str("</");
        self.buf.push_str(tag);
        self.buf.push('>');
    }

    /// Closes the method element and the envelope and returns the document.
    pub fn finish(mut self) -> String {
        self.buf.push_str("</");
        self.buf.push_str(self.method);
        self.buf.push_str("></soapenv:Body></soapenv:Envelope>");
        self.buf
    }
}

/// Appends `s` with `&`, `<`, `>`, `"` and `'` escaped (safe in text and attributes).
pub fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // A bare CR would be normalised to LF by the server's parser.
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

/// XML 1.0 forbids most C0 control characters even as character references,
/// so a value holding one cannot be sent at all; say so instead of sending
/// a document the server rejects with an opaque parse error.
fn check_xml_chars(tag: &str, value: &str) -> Result<(), Error> {
    match value.chars().find(|&c| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{FFFE}' || c == '\u{FFFF}'
    }) {
        None => Ok(()),
        Some(c) => Err(Error::InvalidInput {
            what: "request value",
            detail: format!(
                "<{tag}> value contains the control character U+{:04X}, which XML 1.0 cannot carry; escape it (e.g. as JSON) first",
                c as u32
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_shape_matches_research_notes() {
        let mut r = Request::new("Login", &MoRef::new("SessionManager", "SessionManager"));
        r.text("userName", "u").unwrap();
        r.text("password", "p<&>\"'").unwrap();
        let xml = r.finish();
        assert!(xml.starts_with(r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/""#));
        assert!(xml.contains(r#"<soapenv:Body><Login xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this><userName>u</userName><password>p&lt;&amp;&gt;&quot;&apos;</password></Login></soapenv:Body></soapenv:Envelope>"#), "{xml}");
    }

    #[test]
    fn control_characters_are_refused_with_the_tag_named() {
        let mut r = Request::new(
            "SetField",
            &MoRef::new("CustomFieldsManager", "CustomFieldsManager"),
        );
        let err = r.text("value", "a\u{1}b").unwrap_err();
        assert!(err.to_string().contains("<value>"), "{err}");
        assert!(r.text("value", "tab\tand\nnewline").is_ok());
    }
}
