//! `vmig`: the vCenter admin's view of MIG — inventory report, capacity, vGPU assignment.
//! All logic lives in the `vmig` library; see docs/admin-guide.md.

fn main() -> std::process::ExitCode {
    vmig::cli::main()
}
