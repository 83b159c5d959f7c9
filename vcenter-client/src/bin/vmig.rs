//! `vmig`: the vCenter admin's view of MIG — inventory report, capacity, vGPU assignment.
//! All logic lives in `vcenter_client::admin`; see docs/admin-guide.md.

fn main() -> std::process::ExitCode {
    vcenter_client::admin::cli::main()
}
