//! The SOAP layer: pure encoding and decoding, no I/O (the transport feeds it).
//! Kept separate so it can be unit-tested on captured XML and fuzzed.

pub mod decode;
pub mod encode;
pub mod fault;
pub mod node;
