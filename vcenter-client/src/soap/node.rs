//! The owned XML tree a response decodes into ([`Node`]), and how callers read typed values
//! off it. The decoder (`decode.rs`) builds it; every reader of a response, fault decoding
//! included, only reads it.

use std::borrow::Cow;
use std::str::FromStr;

use crate::Error;
use crate::moref::MoRef;

/// One XML element of a response: its local name, `xsi:type`, the plain
/// `type` attribute (set on managed object references), its text (leaves
/// only) and its child elements in document order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    pub(crate) name: Cow<'static, str>,
    pub(crate) xsi_type: Option<Cow<'static, str>>,
    pub(crate) type_attr: Option<Cow<'static, str>>,
    pub(crate) text: String,
    pub(crate) children: Vec<Node>,
}

impl Node {
    /// The element's local name (namespace prefix removed).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `xsi:type` value without its prefix, e.g. `ArrayOfString`.
    pub fn xsi_type(&self) -> Option<&str> {
        self.xsi_type.as_deref()
    }

    /// The unqualified `type` attribute (the managed object type of a MoRef).
    pub fn type_attr(&self) -> Option<&str> {
        self.type_attr.as_deref()
    }

    /// The element's text content (empty for elements with children).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Child elements in document order.
    pub fn children(&self) -> &[Node] {
        &self.children
    }

    /// Consumes the node and returns its children.
    pub fn into_children(self) -> Vec<Node> {
        self.children
    }

    /// The first child with this local name.
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// All children with this local name.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Text of the first child with this local name.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(Node::text)
    }

    /// Reads this element as a managed object reference (`<x type="T">id</x>`).
    pub fn to_moref(&self) -> Result<MoRef, Error> {
        match self.type_attr.as_deref() {
            Some(kind) if !kind.is_empty() && !self.text.is_empty() => {
                Ok(MoRef::new(kind, self.text.clone()))
            }
            _ => Err(self.bad("a managed object reference with a type attribute and an id")),
        }
    }

    /// Parses the text as `T` (numbers, enums with `FromStr`).
    pub fn parse<T: FromStr>(&self) -> Result<T, Error> {
        self.text
            .trim()
            .parse()
            .map_err(|_| self.bad(std::any::type_name::<T>()))
    }

    /// Parses an `xsd:boolean` (`true`, `false`, `1`, `0`).
    pub fn parse_bool(&self) -> Result<bool, Error> {
        match self.text.trim() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(self.bad("xsd:boolean")),
        }
    }

    /// Parses the named child as `T` if present.
    pub fn child_parse<T: FromStr>(&self, name: &str) -> Result<Option<T>, Error> {
        self.child(name).map(Node::parse).transpose()
    }

    /// Parses the named child as an `xsd:boolean` if present.
    pub fn child_bool(&self, name: &str) -> Result<Option<bool>, Error> {
        self.child(name).map(Node::parse_bool).transpose()
    }

    /// Text of the named child as an owned string, if present.
    pub fn child_string(&self, name: &str) -> Option<String> {
        self.child_text(name).map(str::to_string)
    }

    pub(crate) fn bad(&self, expected: &str) -> Error {
        let mut shown: String = self.text.chars().take(80).collect();
        if shown.len() < self.text.len() {
            shown.push('…');
        }
        Error::Decode {
            context: format!("<{}>", self.name),
            detail: format!("expected {expected}, found {shown:?}"),
        }
    }
}
