//! docs/mig-model.md carries the catalog tables; this test renders them from the code and
//! checks the document holds exactly that text, so the two cannot drift apart.
//! After a deliberate catalog change run `UPDATE_MIG_DOCS=1 cargo test -p mig --test docs_tables`
//! and review the diff.
use std::fmt::Write as _;
use std::path::PathBuf;

use mig::{Placement, catalog};

const BEGIN: &str = "<!-- BEGIN GENERATED: catalog tables (mig/tests/docs_tables.rs) -->";
const END: &str = "<!-- END GENERATED -->";

fn placements(list: &[Placement]) -> String {
    let starts: Vec<String> = list.iter().map(|p| p.start.to_string()).collect();
    format!(
        "{{{}}}:{}",
        starts.join(","),
        list.first().map_or(0, |p| p.size)
    )
}

fn render() -> String {
    let mut out = String::new();
    for m in catalog() {
        let _ = writeln!(out, "\n#### `{}` — {}\n", m.key, m.nvml_name);
        let _ = writeln!(
            out,
            "PCI device 0x{:04X}, {} MiB, {} compute / {} memory slices, {} SMs, {}.\n",
            m.pci_device_id,
            m.memory_mib,
            m.compute_slices,
            m.memory_slices,
            m.sm_count,
            if m.vgpu_board.is_empty() {
                "no vGPU board (no MIG-backed vGPU type names)".to_string()
            } else {
                format!("vGPU board `{}`", m.vgpu_board)
            }
        );
        out.push_str("| Profile | ID | NVML index | Instances | memorySizeMB (GiB) | SM | CE | DEC | ENC | JPEG | OFA | Placements |\n");
        out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for p in m.gi_profiles {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} ({}) | {} | {} | {} | {} | {} | {} | {} |",
                p.name,
                p.id,
                p.nvml_index,
                p.instance_count,
                p.memory_mib,
                p.memory_gib_display(),
                p.engines.sm,
                p.engines.ce,
                p.engines.dec,
                p.engines.enc,
                p.engines.jpeg,
                p.engines.ofa,
                placements(p.placements)
            );
        }
        out.push_str("\n| GI profile | CI profiles: name (CI ID) ×instances, SM, placements; `*` = default |\n|---|---|\n");
        for p in m.gi_profiles {
            let cis: Vec<String> = p
                .ci_profiles
                .iter()
                .map(|c| {
                    format!(
                        "{} ({}{}) ×{}, {} SM, {}",
                        c.name,
                        c.id,
                        if c.is_default { "*" } else { "" },
                        c.instance_count,
                        c.sm_count,
                        placements(c.placements)
                    )
                })
                .collect();
            let _ = writeln!(out, "| {} | {} |", p.name, cis.join("; "));
        }
        let regions: Vec<String> = m
            .gi_id_regions
            .iter()
            .map(|(p, id)| format!("{p}→{id}"))
            .collect();
        let _ = writeln!(
            out,
            "\nGI id regions (placement→id): {}.",
            regions.join(", ")
        );
    }
    out
}

#[test]
fn mig_model_doc_matches_the_catalog() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/mig-model.md");
    let doc =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let (head, rest) = doc
        .split_once(BEGIN)
        .expect("docs/mig-model.md lacks the BEGIN GENERATED marker");
    let (current, tail) = rest
        .split_once(END)
        .expect("docs/mig-model.md lacks the END GENERATED marker");
    let want = format!("{}\n", render());
    if std::env::var_os("UPDATE_MIG_DOCS").is_some() {
        std::fs::write(&path, format!("{head}{BEGIN}{want}{END}{tail}")).unwrap();
        return;
    }
    assert!(
        current == want,
        "docs/mig-model.md catalog tables are stale; run UPDATE_MIG_DOCS=1 cargo test -p mig --test docs_tables"
    );
}
