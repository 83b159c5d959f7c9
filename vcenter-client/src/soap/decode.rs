//! Reading vim25 response envelopes with a namespace-aware streaming reader.
//!
//! quick-xml events are turned into a small owned tree ([`Node`]), one
//! element at a time. For ordinary calls the whole (small) response becomes a
//! tree. For the property collector the builder runs in *streaming* mode:
//! every child of `<returnval>` (each `<objects>` and the `<token>`) is handed
//! to a callback as soon as its end tag is read and then dropped, so a
//! 250 MB `RetrievePropertiesEx` answer never sits in memory at once.
//!
//! `xsi:type` is recognised by namespace URI, never by prefix: vcsim 0.24
//! writes `XMLSchema-instance:type` with a local declaration while vCenter
//! writes `xsi:type`. The value's own prefix (`xsd:`, `vim25:`) is dropped.
//! Unknown elements are kept in the tree and ignored by the typed readers,
//! because newer servers add fields.

use std::borrow::Cow;
use std::io::BufRead;
use std::ops::ControlFlow;

use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

use super::encode::{SOAPENV_NS, XSI_NS};
use crate::Error;

/// Deeper nesting than this is refused: real vim25 data is < 20 levels, and a
/// bound keeps hostile input from exhausting the stack when trees are dropped.
const MAX_DEPTH: usize = 100;

/// Largest answer read whole ([`Mode::Whole`], [`Mode::Plain`]): every call but the property
/// collector's answers in kilobytes.
pub const MAX_WHOLE_RESPONSE_BYTES: u64 = 64 << 20;
/// Largest streamed answer ([`Mode::Stream`]): vCenter's maximum inventory (2,500 hosts,
/// 40,000 VMs) is about 250 MB.
pub const MAX_STREAM_RESPONSE_BYTES: u64 = 1 << 30;
/// Longest text of one element: a custom attribute value (a `vmig.mig` document) is at most
/// a few hundred KiB.
pub const MAX_TEXT_BYTES: usize = 8 << 20;
/// Most elements held in memory at once (the whole tree, or in streaming mode the objects not
/// yet handed out): about 100 MB of nodes.
pub const MAX_HELD_ELEMENTS: usize = 1_000_000;

pub use super::node::Node;

/// Whether the builder hands `returnval` children out as they complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Keep the whole document.
    Whole,
    /// Emit each child of `Envelope/Body/*Response/returnval` when it closes.
    Stream,
    /// Keep the whole document and accept any root element (for the plain
    /// XML `vimServiceVersions.xml`).
    Plain,
    /// Emit each `objectSet` of `…/returnval/filterSet` when it closes (the objects of a
    /// `WaitForUpdatesEx` answer); the rest of the document is kept.
    StreamUpdates,
}

/// Builds [`Node`] trees from a flat event sequence.
#[derive(Debug)]
struct TreeBuilder {
    stack: Vec<Node>,
    root: Option<Node>,
    mode: Mode,
    /// Text of the innermost open element since its start tag, while it has no child.
    /// Text arrives in pieces (every entity is its own event) and most of it is
    /// formatting between child elements: collecting it here and copying it into the
    /// node once, at its end tag and only for leaves, saves an allocation per piece and
    /// per container element.
    text: String,
    /// Elements held now ([`MAX_HELD_ELEMENTS`]).
    held: usize,
    /// Per open element, the elements of its subtree so far (itself included), so that the
    /// count drops when a streamed object is handed out.
    sizes: Vec<usize>,
}

impl TreeBuilder {
    fn new(mode: Mode) -> Self {
        Self {
            stack: Vec::new(),
            root: None,
            mode,
            text: String::new(),
            held: 0,
            sizes: Vec::new(),
        }
    }

    fn start(&mut self, node: Node, soap_ns: bool) -> Result<(), Error> {
        if self.root.is_some() {
            return Err(xml_err("a second root element after the envelope"));
        }
        if self.stack.is_empty()
            && self.mode != Mode::Plain
            && !(node.name == "Envelope" && soap_ns)
        {
            return Err(Error::Decode {
                context: "response".into(),
                detail: format!(
                    "expected a SOAP Envelope in {SOAPENV_NS}, found <{}>; is the URL a vCenter /sdk endpoint?",
                    node.name
                ),
            });
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(xml_err(format!(
                "elements nested deeper than {MAX_DEPTH} levels"
            )));
        }
        if self.held >= MAX_HELD_ELEMENTS {
            return Err(limit_err(MAX_HELD_ELEMENTS as u64, "elements held at once"));
        }
        // Whitespace between child elements is formatting, not content: the parent's
        // text so far is dropped, and later text of the parent is ignored (`text`).
        self.text.clear();
        self.stack.push(node);
        self.sizes.push(1);
        self.held += 1;
        Ok(())
    }

    fn text(&mut self, s: &str) -> Result<(), Error> {
        if let Some(top) = self.stack.last()
            && top.children.is_empty()
        {
            if self.text.len().saturating_add(s.len()) > MAX_TEXT_BYTES {
                return Err(limit_err(
                    MAX_TEXT_BYTES as u64,
                    "bytes of text in one element",
                ));
            }
            self.text.push_str(s);
        }
        Ok(())
    }

    fn end(&mut self) -> Result<Option<Node>, Error> {
        let mut node = self
            .stack
            .pop()
            .ok_or_else(|| xml_err("an end tag without a start tag"))?;
        let size = self.sizes.pop().unwrap_or(1);
        if node.children.is_empty() && !self.text.is_empty() {
            node.text = self.text.as_str().into();
        }
        self.text.clear();
        if self.mode == Mode::Stream
            && self.stack.len() == 4
            && self.stack[1].name == "Body"
            && self.stack[2].name != "Fault"
            && self.stack[3].name == "returnval"
        {
            self.held = self.held.saturating_sub(size);
            return Ok(Some(node));
        }
        if self.mode == Mode::StreamUpdates
            && self.stack.len() == 5
            && self.stack[1].name == "Body"
            && self.stack[2].name != "Fault"
            && self.stack[3].name == "returnval"
            && self.stack[4].name == "filterSet"
            && node.name == "objectSet"
        {
            self.held = self.held.saturating_sub(size);
            return Ok(Some(node));
        }
        if let Some(parent) = self.sizes.last_mut() {
            *parent = parent.saturating_add(size);
        }
        match self.stack.last_mut() {
            Some(parent) => parent.children.push(node),
            None => self.root = Some(node),
        }
        Ok(None)
    }

    fn finish(self) -> Result<Node, Error> {
        if let Some(open) = self.stack.last() {
            return Err(xml_err(format!(
                "the document ended inside <{}> (truncated response?)",
                open.name
            )));
        }
        self.root.ok_or_else(|| xml_err("an empty document"))
    }
}

fn xml_err(detail: impl Into<String>) -> Error {
    Error::Xml {
        context: "response".into(),
        detail: detail.into(),
    }
}

fn limit_err(limit: u64, what: &'static str) -> Error {
    Error::ResponseLimit { limit, what }
}

/// The byte limit of an answer read in `mode`.
fn byte_limit(mode: Mode) -> u64 {
    match mode {
        Mode::Stream | Mode::StreamUpdates => MAX_STREAM_RESPONSE_BYTES,
        Mode::Whole | Mode::Plain => MAX_WHOLE_RESPONSE_BYTES,
    }
}

/// Fails once the reader has gone past `limit` bytes (it reads through a `take(limit + 1)`,
/// so a longer answer shows as exactly one byte too many, never as a truncated document).
fn check_size<R>(reader: &NsReader<R>, limit: u64) -> Result<(), Error> {
    if reader.buffer_position() > limit {
        return Err(limit_err(limit, "bytes in one response"));
    }
    Ok(())
}

fn qx(e: impl std::fmt::Display) -> Error {
    xml_err(e.to_string())
}

/// One converted reader event. Text borrows the reader's buffer: it is appended to the
/// open element without an intermediate allocation (most of a property-collector answer
/// is short leaf text).
enum Step<'a> {
    Start(Node, bool),
    Empty(Node, bool),
    Text(Cow<'a, str>),
    End,
    Eof,
    Skip,
}

/// The element names that make up most of a property-collector answer (a few per
/// property of each of tens of thousands of objects): shared, not allocated per element.
const COMMON_NAMES: &[&str] = &[
    "objects",
    "obj",
    "propSet",
    "name",
    "val",
    "missingSet",
    "key",
    "value",
    "string",
    "CustomFieldValue",
    "HostGraphicsInfo",
    "deviceName",
    "vendorName",
    "pciId",
    "graphicsType",
    "vgpuMode",
    "memorySizeInKB",
    "vm",
];

/// The `xsi:type` and managed object type values that recur on every object of a
/// property-collector answer: shared, not allocated per element.
const COMMON_TYPES: &[&str] = &[
    "string",
    "boolean",
    "int",
    "long",
    "ManagedObjectReference",
    "HostSystem",
    "VirtualMachine",
    "ArrayOfString",
    "ArrayOfCustomFieldValue",
    "CustomFieldStringValue",
    "ArrayOfHostGraphicsInfo",
    "HostGraphicsInfo",
    "HostGraphicsConfig",
    "ArrayOfHostSharedGpuCapabilities",
    "HostSharedGpuCapabilities",
    "HostSystemConnectionState",
    "VirtualMachinePowerState",
];

fn local(name: &[u8]) -> Cow<'static, str> {
    match COMMON_NAMES.iter().find(|n| n.as_bytes() == name) {
        Some(n) => Cow::Borrowed(n),
        None => Cow::Owned(String::from_utf8_lossy(name).into_owned()),
    }
}

fn type_value(v: &str) -> Cow<'static, str> {
    match COMMON_TYPES.iter().find(|t| **t == v) {
        Some(t) => Cow::Borrowed(t),
        None => Cow::Owned(v.to_string()),
    }
}

fn element<R>(reader: &NsReader<R>, e: &BytesStart<'_>) -> Result<(Node, bool), Error> {
    let (ns, local_name) = reader.resolve_element(e.name());
    let soap_ns = matches!(ns, ResolveResult::Bound(n) if n.as_ref() == SOAPENV_NS.as_bytes());
    let mut node = Node {
        name: local(local_name.as_ref()),
        ..Node::default()
    };
    // vim25 answers are machine-written: skip the duplicate-attribute check.
    for attr in e.attributes().with_checks(false) {
        let attr = attr.map_err(qx)?;
        let (ans, aname) = reader.resolve_attribute(attr.key);
        match ans {
            ResolveResult::Bound(n)
                if n.as_ref() == XSI_NS.as_bytes() && aname.as_ref() == b"type" =>
            {
                let v = attr
                    .decode_and_unescape_value(reader.decoder())
                    .map_err(qx)?;
                let v = v.rsplit(':').next().unwrap_or_default();
                node.xsi_type = Some(type_value(v));
            }
            ResolveResult::Unbound if aname.as_ref() == b"type" => {
                let v = attr
                    .decode_and_unescape_value(reader.decoder())
                    .map_err(qx)?;
                node.type_attr = Some(type_value(&v));
            }
            _ => {}
        }
    }
    Ok((node, soap_ns))
}

fn convert<'a, R>(reader: &NsReader<R>, ev: Event<'a>) -> Result<Step<'a>, Error> {
    Ok(match ev {
        Event::Start(e) => {
            let (n, s) = element(reader, &e)?;
            Step::Start(n, s)
        }
        Event::Empty(e) => {
            let (n, s) = element(reader, &e)?;
            Step::Empty(n, s)
        }
        Event::End(_) => Step::End,
        Event::Text(t) => Step::Text(t.decode().map_err(qx)?),
        Event::CData(c) => Step::Text(c.decode().map_err(qx)?),
        Event::GeneralRef(r) => {
            if let Some(ch) = r.resolve_char_ref().map_err(qx)? {
                Step::Text(ch.to_string().into())
            } else {
                let name = r.decode().map_err(qx)?;
                let s = match name.as_ref() {
                    "amp" => "&",
                    "lt" => "<",
                    "gt" => ">",
                    "quot" => "\"",
                    "apos" => "'",
                    other => return Err(xml_err(format!("unknown entity &{other};"))),
                };
                Step::Text(s.into())
            }
        }
        Event::Eof => Step::Eof,
        Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => Step::Skip,
    })
}

/// Feeds one step into the builder; `Some(node)` is an emitted stream node.
fn apply(b: &mut TreeBuilder, step: Step) -> Result<(Option<Node>, bool), Error> {
    match step {
        Step::Start(n, s) => b.start(n, s).map(|()| (None, false)),
        Step::Empty(n, s) => {
            b.start(n, s)?;
            b.end().map(|n| (n, false))
        }
        Step::Text(t) => b.text(&t).map(|()| (None, false)),
        Step::End => b.end().map(|n| (n, false)),
        Step::Eof => Ok((None, true)),
        Step::Skip => Ok((None, false)),
    }
}

/// Callback for streamed `returnval` children; `Break` stops reading.
pub type Emit<'a> = dyn FnMut(Node) -> Result<ControlFlow<()>, Error> + Send + 'a;

/// Parses a whole document from a synchronous reader. In [`Mode::Stream`],
/// `returnval` children go to `emit`; returns `None` if `emit` stopped early.
pub fn parse_sync<R: BufRead>(
    input: R,
    mode: Mode,
    emit: &mut Emit<'_>,
) -> Result<Option<Node>, Error> {
    let limit = byte_limit(mode);
    let mut reader = NsReader::from_reader(input.take(limit.saturating_add(1)));
    let mut b = TreeBuilder::new(mode);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let ev = reader.read_event_into(&mut buf);
        check_size(&reader, limit)?;
        let ev = ev.map_err(qx)?;
        let step = convert(&reader, ev)?;
        let (out, eof) = apply(&mut b, step)?;
        if let Some(node) = out
            && emit(node)?.is_break()
        {
            return Ok(None);
        }
        if eof {
            return b.finish().map(Some);
        }
    }
}

/// The asynchronous twin of [`parse_sync`], reading from an HTTP body.
pub async fn parse_async<R: tokio::io::AsyncBufRead + Unpin>(
    input: R,
    mode: Mode,
    emit: &mut Emit<'_>,
) -> Result<Option<Node>, Error> {
    use tokio::io::AsyncReadExt;
    let limit = byte_limit(mode);
    let mut reader = NsReader::from_reader(input.take(limit.saturating_add(1)));
    let mut b = TreeBuilder::new(mode);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let ev = reader.read_event_into_async(&mut buf).await;
        check_size(&reader, limit)?;
        let ev = ev.map_err(qx)?;
        let step = convert(&reader, ev)?;
        let (out, eof) = apply(&mut b, step)?;
        if let Some(node) = out
            && emit(node)?.is_break()
        {
            return Ok(None);
        }
        if eof {
            return b.finish().map(Some);
        }
    }
}

/// Splits a parsed envelope into the method's response element, turning a
/// `soapenv:Fault` into [`Error::Fault`].
pub fn into_response(envelope: Node, method: &str) -> Result<Node, Error> {
    let body = envelope
        .children
        .into_iter()
        .find(|c| c.name == "Body")
        .ok_or_else(|| Error::Decode {
            context: format!("{method} response"),
            detail: "the envelope has no Body".into(),
        })?;
    let first = body
        .children
        .into_iter()
        .next()
        .ok_or_else(|| Error::Decode {
            context: format!("{method} response"),
            detail: "the Body is empty".into(),
        })?;
    if first.name == "Fault" {
        return Err(Error::Fault {
            method: method.to_string(),
            fault: Box::new(super::fault::Fault::from_soap_fault(&first)),
        });
    }
    Ok(first)
}

/// Parses a complete in-memory response document (used by tests and fuzzing).
pub fn parse_whole(bytes: &[u8], method: &str) -> Result<Node, Error> {
    let root = parse_sync(bytes, Mode::Whole, &mut |_| Ok(ControlFlow::Continue(())))?
        .ok_or_else(|| xml_err("stopped early"))?;
    into_response(root, method)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::moref::MoRef;

    const VCSIM_PROPS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<soapenv:Body><RetrievePropertiesExResponse xmlns="urn:vim25"><returnval>
 <objects><obj type="VirtualMachine">vm-57</obj>
  <propSet><name>name</name><val xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="xsd:string">DC0_H0_VM0 &amp; co</val></propSet>
 </objects>
 <objects><obj type="VirtualMachine">vm-58</obj></objects>
</returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"#;

    #[test]
    fn xsi_type_is_resolved_by_uri_not_prefix() {
        let resp = parse_whole(VCSIM_PROPS.as_bytes(), "RetrievePropertiesEx").unwrap();
        let rv = resp.child("returnval").unwrap();
        let val = rv.children()[0]
            .child("propSet")
            .unwrap()
            .child("val")
            .unwrap();
        assert_eq!(val.xsi_type(), Some("string"));
        assert_eq!(val.text(), "DC0_H0_VM0 & co");
        let obj = rv.children()[0].child("obj").unwrap().to_moref().unwrap();
        assert_eq!(obj, MoRef::new("VirtualMachine", "vm-57"));
    }

    #[test]
    fn a_foreign_prefix_bound_elsewhere_is_not_xsi() {
        let doc = r#"<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="urn:not-xsi"><e:Body><R xmlns="urn:vim25"><returnval xsi:type="Fake">1</returnval></R></e:Body></e:Envelope>"#;
        let resp = parse_whole(doc.as_bytes(), "R").unwrap();
        assert_eq!(resp.child("returnval").unwrap().xsi_type(), None);
    }

    #[test]
    fn streaming_emits_returnval_children_one_by_one() {
        let mut seen = Vec::new();
        let root = parse_sync(VCSIM_PROPS.as_bytes(), Mode::Stream, &mut |n: Node| {
            seen.push(n.child("obj").unwrap().text().to_string());
            Ok(ControlFlow::Continue(()))
        })
        .unwrap()
        .unwrap();
        assert_eq!(seen, ["vm-57", "vm-58"]);
        // Nothing was retained under returnval.
        let resp = into_response(root, "RetrievePropertiesEx").unwrap();
        assert!(resp.child("returnval").unwrap().children().is_empty());
    }

    #[test]
    fn streaming_can_stop_early() {
        let mut n = 0;
        let out = parse_sync(VCSIM_PROPS.as_bytes(), Mode::Stream, &mut |_| {
            n += 1;
            Ok(ControlFlow::Break(()))
        })
        .unwrap();
        assert!(out.is_none());
        assert_eq!(n, 1);
    }

    #[test]
    fn non_soap_documents_are_refused_clearly() {
        let err = parse_whole(b"<html><body>404</body></html>", "X").unwrap_err();
        assert!(err.to_string().contains("SOAP Envelope"), "{err}");
    }

    #[test]
    fn truncated_documents_are_refused() {
        let err = parse_whole(&VCSIM_PROPS.as_bytes()[..300], "X").unwrap_err();
        assert!(matches!(err, Error::Xml { .. }), "{err}");
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let mut doc =
            String::from(r#"<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/">"#);
        doc.push_str(&"<a>".repeat(500));
        let err = parse_whole(doc.as_bytes(), "X").unwrap_err();
        assert!(err.to_string().contains("deeper"), "{err}");
    }

    /// `head`, then `filler` repeated for ever: a server that never stops sending.
    struct Endless {
        head: std::io::Cursor<Vec<u8>>,
        filler: &'static [u8],
        at: usize,
    }

    impl std::io::Read for Endless {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.head.read(out)?;
            if n > 0 {
                return Ok(n);
            }
            for b in out.iter_mut() {
                *b = self.filler[self.at % self.filler.len()];
                self.at += 1;
            }
            Ok(out.len())
        }
    }

    fn endless(filler: &'static [u8]) -> std::io::BufReader<Endless> {
        let head = format!(
            r#"<soapenv:Envelope xmlns:soapenv="{SOAPENV_NS}"><soapenv:Body><XResponse><returnval>"#
        );
        std::io::BufReader::new(Endless {
            head: std::io::Cursor::new(head.into_bytes()),
            filler,
            at: 0,
        })
    }

    fn limit_of(filler: &'static [u8], mode: Mode) -> (u64, &'static str) {
        let mut emit = |_| Ok(ControlFlow::Continue(()));
        match parse_sync(endless(filler), mode, &mut emit) {
            Err(Error::ResponseLimit { limit, what }) => (limit, what),
            other => panic!("expected a limit error, got {other:?}"),
        }
    }

    #[test]
    fn endless_answers_stop_at_a_named_limit() {
        // One text that never ends, in pieces (every entity is its own event; one piece
        // without an end is stopped by the byte count below).
        let (limit, what) = limit_of(b"xyz&amp;", Mode::Whole);
        assert_eq!(
            (limit, what),
            (MAX_TEXT_BYTES as u64, "bytes of text in one element")
        );
        // Elements that never end, kept whole.
        let (limit, what) = limit_of(b"<a/>", Mode::Whole);
        assert_eq!(
            (limit, what),
            (MAX_HELD_ELEMENTS as u64, "elements held at once")
        );
        // A comment that never ends: only the byte count stops it.
        let (limit, what) = limit_of(b"<!--", Mode::Whole);
        assert_eq!(
            (limit, what),
            (MAX_WHOLE_RESPONSE_BYTES, "bytes in one response")
        );
        let e = Error::ResponseLimit { limit, what }.to_string();
        assert!(e.contains("67108864 bytes in one response"), "{e}");
    }

    #[test]
    fn streamed_objects_leave_the_held_count() {
        // 1.5 × the held limit in small objects, each handed out: no limit is hit.
        let mut doc = format!(
            r#"<soapenv:Envelope xmlns:soapenv="{SOAPENV_NS}"><soapenv:Body><XResponse><returnval>"#
        );
        doc.push_str(&"<objects><obj/></objects>".repeat(MAX_HELD_ELEMENTS * 3 / 4));
        doc.push_str("</returnval></XResponse></soapenv:Body></soapenv:Envelope>");
        let mut n = 0;
        let mut emit = |_| {
            n += 1;
            Ok(ControlFlow::Continue(()))
        };
        parse_sync(doc.as_bytes(), Mode::Stream, &mut emit).unwrap();
        assert_eq!(n, MAX_HELD_ELEMENTS * 3 / 4);
    }
}
