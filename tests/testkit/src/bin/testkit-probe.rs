//! A trivial program the harness's own tests build through `workspace_bin`, so that those
//! tests do not depend on (or wait for) any product crate.
fn main() {
    println!("testkit-probe {}", env!("CARGO_PKG_VERSION"));
}
