//! A small element tree over quick-xml, and the escaping VMware's writers use.
//!
//! VIB metadata is a handful of small documents, so a tree is simpler than streaming.
//! Parsing is iterative with a depth cap, so hostile input (fuzzing) cannot overflow the
//! stack either while parsing or while dropping the tree.

use quick_xml::{Reader, events::Event};

const MAX_DEPTH: usize = 32;

/// One XML element: name, attributes in document order, child elements and its text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// Tag name.
    pub name: String,
    /// Attributes in document order, unescaped.
    pub attrs: Vec<(String, String)>,
    /// Child elements in document order.
    pub children: Vec<Element>,
    /// Concatenated, unescaped character data directly inside this element.
    pub text: String,
}

impl Element {
    /// The value of attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// All children named `name`.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Text of the first child named `name`.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }
}

/// Why bytes are not a well-formed XML document.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum XmlError {
    /// Malformed XML.
    #[error("malformed XML at byte {position}: {message}")]
    Malformed {
        /// Byte offset.
        position: u64,
        /// Parser message.
        message: String,
    },
    /// No root element.
    #[error("XML document has no root element")]
    Empty,
    /// Nested too deep.
    #[error("XML nesting deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// Content after the root element.
    #[error("XML document has content after its root element")]
    TrailingContent,
}

fn predefined(name: &str) -> Option<char> {
    Some(match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "apos" => '\'',
        "quot" => '"',
        _ => return None,
    })
}

/// Parses a document into its root element.
///
/// # Errors
/// [`XmlError`] for malformed input.
pub fn parse(bytes: &[u8]) -> Result<Element, XmlError> {
    let mut reader = Reader::from_reader(bytes);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let bad = |reader: &Reader<&[u8]>, message: String| XmlError::Malformed {
        position: reader.buffer_position(),
        message,
    };
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| bad(&reader, e.to_string()))?;
        match ev {
            Event::Start(ref s) | Event::Empty(ref s) => {
                if root.is_some() {
                    return Err(XmlError::TrailingContent);
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                let name = String::from_utf8_lossy(s.name().as_ref()).into_owned();
                let mut attrs = Vec::new();
                for a in s.attributes() {
                    let a = a.map_err(|e| bad(&reader, e.to_string()))?;
                    let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
                    let value = a
                        .unescape_value()
                        .map_err(|e| bad(&reader, e.to_string()))?
                        .into_owned();
                    attrs.push((key, value));
                }
                let el = Element {
                    name,
                    attrs,
                    ..Default::default()
                };
                if matches!(ev, Event::Start(_)) {
                    stack.push(el);
                } else {
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(el),
                        None => root = Some(el),
                    }
                }
            }
            Event::End(_) => {
                let Some(el) = stack.pop() else {
                    return Err(bad(&reader, "unexpected end tag".into()));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                let s = t.xml_content().map_err(|e| bad(&reader, e.to_string()))?;
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&s),
                    None if s.trim().is_empty() => {}
                    None => return Err(bad(&reader, "text outside the root element".into())),
                }
            }
            Event::CData(c) => {
                let s = c.decode().map_err(|e| bad(&reader, e.to_string()))?;
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&s);
                }
            }
            Event::GeneralRef(r) => {
                let ch = match r
                    .resolve_char_ref()
                    .map_err(|e| bad(&reader, e.to_string()))?
                {
                    Some(c) => c,
                    None => {
                        let name = r.decode().map_err(|e| bad(&reader, e.to_string()))?;
                        predefined(&name)
                            .ok_or_else(|| bad(&reader, format!("unknown entity &{name};")))?
                    }
                };
                match stack.last_mut() {
                    Some(el) => el.text.push(ch),
                    None => return Err(bad(&reader, "entity outside the root element".into())),
                }
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Malformed {
            position: reader.buffer_position(),
            message: "unclosed element".into(),
        });
    }
    root.ok_or(XmlError::Empty)
}

/// Escapes character data the way Python's ElementTree (VMware's writer) does: `& < >`.
pub fn text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Escapes an attribute value: `& < > "`.
pub fn attr(s: &str) -> String {
    text(s).replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tree_with_entities() {
        let e =
            parse(b"<?xml version=\"1.0\"?><a x=\"&gt;=\"><b>1 &amp; 2&#x21;</b><c/></a>").unwrap();
        assert_eq!(e.attr("x"), Some(">="));
        assert_eq!(e.child_text("b"), Some("1 & 2!"));
        assert!(e.child("c").is_some());
    }

    #[test]
    fn rejects_bad_documents() {
        assert!(parse(b"<a><b></a>").is_err());
        assert_eq!(parse(b""), Err(XmlError::Empty));
        assert_eq!(parse(b"<a/><b/>"), Err(XmlError::TrailingContent));
        assert_eq!(parse("<a>".repeat(100).as_bytes()), Err(XmlError::TooDeep));
    }

    #[test]
    fn escapes_like_elementtree() {
        assert_eq!(text("a<b>&'\""), "a&lt;b&gt;&amp;'\"");
        assert_eq!(attr(">=\""), "&gt;=&quot;");
    }
}
