//! A trivial program the harness's own tests build through `workspace_bin`, so that those
//! tests do not depend on (or wait for) any product crate.
#![allow(
    clippy::print_stdout,
    reason = "a probe binary: its one line of stdout is what the tests read"
)]
fn main() {
    println!("testkit-probe {}", env!("CARGO_PKG_VERSION"));
}
