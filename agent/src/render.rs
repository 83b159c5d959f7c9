//! What the admin sees: the rows each listing command produces (serialised as-is for
//! `--json`, so their field names are the stable JSON keys) and their nvidia-smi-shaped
//! tables and one-line messages, column for column (research `nvml-mig.md` §6).
//!
//! Pure functions from rows to text: no NVML here, so every table is snapshot-tested.
use mig::{CiProfileId, ComputeInstanceId, EngineCounts, GiProfileId, GpuInstanceId, Placement};
use serde::Serialize;

/// `lgip` row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GiProfileRow {
    pub gpu: u32,
    pub profile_id: GiProfileId,
    /// Without `MIG ` (`3g.20gb`).
    pub name: String,
    pub instances_free: u32,
    pub instances_total: u32,
    pub memory_mib: u64,
    /// The `sm`, `ce`, `dec`, `enc`, `jpeg` and `ofa` keys.
    #[serde(flatten)]
    pub engines: EngineCounts,
    pub p2p: bool,
}

/// `lgipp` row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GiPlacementsRow {
    pub gpu: u32,
    pub profile_id: GiProfileId,
    pub name: String,
    pub placements: Vec<Placement>,
}

/// `lgi` row, and what `cgi` reports per created GPU instance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GiRow {
    pub gpu: u32,
    pub gi_id: GpuInstanceId,
    pub profile_id: GiProfileId,
    pub name: String,
    pub placement: Placement,
}

/// `lcip` row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CiProfileRow {
    pub gpu: u32,
    pub gi_id: GpuInstanceId,
    pub profile_id: CiProfileId,
    pub name: String,
    pub instances_free: u32,
    pub instances_total: u32,
    /// Exclusive SMs (`sm`), and the engines shared within the GI (`ce`, `dec`, `enc`,
    /// `jpeg`, `ofa` keys).
    #[serde(flatten)]
    pub engines: EngineCounts,
    /// The profile `-C` creates (marked `*` in the table).
    pub default: bool,
}

/// `lci` row, and what `cci` reports per created compute instance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CiRow {
    pub gpu: u32,
    pub gi_id: GpuInstanceId,
    pub ci_id: ComputeInstanceId,
    pub profile_id: CiProfileId,
    pub name: String,
    pub placement: Placement,
}

/// A GPU instance created by `cgi`, with the compute instance `-C` made in it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreatedGi {
    #[serde(flatten)]
    pub gi: GiRow,
    /// Only with `-C`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compute_instance: Option<CiRow>,
}

/// `dgi` JSON row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DestroyedGi {
    pub gpu: u32,
    pub gi_id: GpuInstanceId,
}

/// `dci` JSON row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DestroyedCi {
    pub gpu: u32,
    pub gi_id: GpuInstanceId,
    pub ci_id: ComputeInstanceId,
}

/// MIG mode as JSON: `"enabled"` / `"disabled"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ModeJson {
    pub current: &'static str,
    pub pending: &'static str,
}

impl ModeJson {
    pub fn new(current: bool, pending: bool) -> ModeJson {
        let s = |b| if b { "enabled" } else { "disabled" };
        ModeJson {
            current: s(current),
            pending: s(pending),
        }
    }
}

/// `list` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListOutput {
    pub gpus: Vec<ListGpu>,
}

/// One GPU of `list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListGpu {
    pub index: u32,
    pub name: String,
    pub uuid: String,
    /// `null` when the GPU does not support MIG.
    pub mig_mode: Option<ModeJson>,
    pub mig_devices: Vec<ListMigDevice>,
}

/// One MIG device of `list`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListMigDevice {
    pub gi_id: GpuInstanceId,
    pub ci_id: ComputeInstanceId,
    /// As `-L` shows it (`MIG 1g.5gb`).
    pub name: String,
    pub uuid: String,
    pub memory_mib: Option<u64>,
}

/// `mig mode` JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModeOutput {
    pub gpu: u32,
    pub pci_bus_id: String,
    pub mig_mode: ModeJson,
    /// Why the change has not taken effect yet: the `nvmlDeviceSetMigMode` activation status
    /// as its NVML constant name (`NVML_ERROR_RESET_REQUIRED`); `null` when it took effect.
    pub activation_status: Option<String>,
    /// Current and pending differ: a GPU reset or host reboot is needed.
    pub reset_required: bool,
}

/// A fixed-width table line between `|` borders, with text placed at exact columns.
struct Line(Vec<char>);

impl Line {
    fn new(width: usize) -> Line {
        let mut v = vec![' '; width];
        v[0] = '|';
        v[width - 1] = '|';
        Line(v)
    }

    /// Text starting at column `col`.
    fn left(mut self, col: usize, s: &str) -> Line {
        for (i, c) in s.chars().enumerate() {
            if let Some(slot) = self.0.get_mut(col + i) {
                *slot = c;
            }
        }
        self
    }

    /// A count as nvidia-smi prints one (`%2d`): two digits end just before column `end`, a
    /// third runs on to the right (`132` SMs), not to the left.
    fn num(self, end: usize, n: u32) -> Line {
        self.left(end.saturating_sub(2), &format!("{n:>2}"))
    }

    /// Text ending just before column `end`.
    fn right(self, end: usize, s: &str) -> Line {
        let n = s.chars().count();
        self.left(end.saturating_sub(n), s)
    }

    fn done(self) -> String {
        self.0.into_iter().collect()
    }
}

fn rule(width: usize, c: char) -> String {
    let (edge_l, edge_r) = if c == '=' { ('|', '|') } else { ('+', '+') };
    format!("{edge_l}{}{edge_r}", c.to_string().repeat(width - 2))
}

fn text_line(width: usize, s: &str) -> String {
    Line::new(width).left(2, s).done()
}

fn push(out: &mut String, line: String) {
    out.push_str(&line);
    out.push('\n');
}

/// nvidia-smi's boxed table: a titled header closed by `|===|`, then each row's lines followed
/// by a `+---+` rule.
fn boxed_table<R>(
    width: usize,
    title: &str,
    header: &[String],
    rows: &[R],
    row_lines: impl Fn(&R) -> Vec<String>,
) -> String {
    let mut out = String::new();
    push(&mut out, rule(width, '-'));
    push(&mut out, text_line(width, title));
    for h in header {
        push(&mut out, h.clone());
    }
    push(&mut out, rule(width, '='));
    for r in rows {
        for l in row_lines(r) {
            push(&mut out, l);
        }
        push(&mut out, rule(width, '-'));
    }
    out
}

/// GiB as nvidia-smi prints it: MiB / 1024, two decimals.
fn gib(mib: u64) -> String {
    format!("{:.2}", mib as f64 / 1024.0)
}

fn yes_no(b: bool) -> &'static str {
    if b { "Yes" } else { "No" }
}

/// Which `-lgip`/`-lgi` layout the driver prints. Newer nvidia-smi widens the name column by
/// two characters (`MIG 1g.24gb+me.all` fills it); every later column moves with it.
/// `-lcip`/`-lci` did not change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableStyle {
    /// Drivers up to 570.86.15 (the last seen so).
    Narrow,
    /// Drivers from 570.169 on (the first seen so; docs/mig-model.md §7).
    Wide,
}

impl TableStyle {
    /// The layout of driver `version` (`570.169`, `580.173.02`). A version between the last
    /// narrow and the first wide one seen counts as wide; one that cannot be read, as the
    /// newest drivers print.
    pub fn of_driver(version: Option<&str>) -> TableStyle {
        let parsed = version.and_then(|v| {
            let mut parts = v.trim().split('.');
            let major: u32 = parts.next()?.parse().ok()?;
            let minor: u32 = parts.next()?.parse().ok()?;
            Some((major, minor))
        });
        match parsed {
            Some(v) if v <= (570, 86) => TableStyle::Narrow,
            _ => TableStyle::Wide,
        }
    }

    /// Extra width of the name column.
    fn name_extra(self) -> usize {
        match self {
            TableStyle::Narrow => 0,
            TableStyle::Wide => 2,
        }
    }

    /// The first heading line up to the column after the name (`GPU   Name` and its padding).
    fn name_heading(self) -> String {
        format!("GPU   Name{}", " ".repeat(13 + self.name_extra()))
    }
}

const LGIP_W: usize = 79;

/// `mig lgip` table.
pub fn gi_profiles_table(rows: &[GiProfileRow], style: TableStyle) -> String {
    let x = style.name_extra();
    let w = LGIP_W + x;
    let header = [
        text_line(
            w,
            &format!(
                "{}ID    Instances   Memory     P2P    SM    DEC   ENC",
                style.name_heading()
            ),
        ),
        Line::new(w)
            .left(31 + x, "Free/Total   GiB              CE    JPEG  OFA")
            .done(),
    ];
    boxed_table(w, "GPU instance profiles:", &header, rows, |r| {
        vec![
            Line::new(w)
                .right(5, &r.gpu.to_string())
                .left(7, &format!("MIG {}", r.name))
                .right(27 + x, &r.profile_id.0.to_string())
                .right(33 + x, &r.instances_free.to_string())
                .left(33 + x, &format!("/{}", r.instances_total))
                .left(43 + x, &gib(r.memory_mib))
                .left(54 + x, yes_no(r.p2p))
                .num(63 + x, r.engines.sm)
                .num(69 + x, r.engines.dec)
                .num(75 + x, r.engines.enc)
                .done(),
            Line::new(w)
                .num(63 + x, r.engines.ce)
                .num(69 + x, r.engines.jpeg)
                .num(75 + x, r.engines.ofa)
                .done(),
        ]
    })
}

/// `mig lgipp` lines (`Placement :` when there is a single start, as nvidia-smi writes it).
pub fn gi_placements_lines(rows: &[GiPlacementsRow]) -> String {
    let mut out = String::new();
    for r in rows {
        let starts = r
            .placements
            .iter()
            .map(|p| p.start.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let size = r.placements.first().map(|p| p.size).unwrap_or(0);
        let label = if r.placements.len() == 1 {
            "Placement :"
        } else {
            "Placements:"
        };
        push(
            &mut out,
            format!(
                "GPU {:2} Profile ID {:2} {label} {{{starts}}}:{size}",
                r.gpu, r.profile_id.0
            ),
        );
    }
    out
}

const LGI_W: usize = 57;

/// `mig lgi` table, or nvidia-smi's line when there are none.
pub fn gis_table(rows: &[GiRow], style: TableStyle) -> String {
    if rows.is_empty() {
        return "No GPU instances found: Not Found\n".to_string();
    }
    let x = style.name_extra();
    let w = LGI_W + x;
    let header = [
        text_line(
            w,
            &format!("{}Profile  Instance   Placement", style.name_heading()),
        ),
        Line::new(w)
            .left(27 + x, "ID       ID       Start:Size")
            .done(),
    ];
    boxed_table(w, "GPU instances:", &header, rows, |r| {
        vec![
            Line::new(w)
                .right(5, &r.gpu.to_string())
                .left(7, &format!("MIG {}", r.name))
                .right(29 + x, &r.profile_id.0.to_string())
                .right(38 + x, &r.gi_id.0.to_string())
                .right(49 + x, &r.placement.start.to_string())
                .left(49 + x, &format!(":{}", r.placement.size))
                .done(),
        ]
    })
}

const LCIP_W: usize = 88;

/// `mig lcip` table.
pub fn ci_profiles_table(rows: &[CiProfileRow]) -> String {
    let w = LCIP_W;
    let header = [
        text_line(
            w,
            "GPU     GPU       Name             Profile  Instances   Exclusive       Shared",
        ),
        Line::new(w)
            .left(
                8,
                "Instance                       ID     Free/Total     SM       DEC   ENC   OFA",
            )
            .done(),
        Line::new(w)
            .left(
                10,
                "ID                                                          CE    JPEG",
            )
            .done(),
    ];
    boxed_table(w, "Compute instance profiles:", &header, rows, |r| {
        let mut line = Line::new(w)
            .right(5, &r.gpu.to_string())
            .right(12, &r.gi_id.0.to_string())
            .left(19, &format!("MIG {}", r.name))
            .right(41, &r.profile_id.0.to_string());
        if r.default {
            line = line.left(41, "*");
        }
        vec![
            line.right(48, &r.instances_free.to_string())
                .left(48, &format!("/{}", r.instances_total))
                .right(63, &r.engines.sm.to_string())
                .right(72, &r.engines.dec.to_string())
                .right(78, &r.engines.enc.to_string())
                .right(84, &r.engines.ofa.to_string())
                .done(),
            Line::new(w)
                .right(72, &r.engines.ce.to_string())
                .right(78, &r.engines.jpeg.to_string())
                .done(),
        ]
    })
}

const LCI_W: usize = 70;

/// `mig lci` table, or nvidia-smi's line when there are none.
pub fn cis_table(rows: &[CiRow]) -> String {
    if rows.is_empty() {
        return "No compute instances found: Not Found\n".to_string();
    }
    let w = LCI_W;
    let header = [
        text_line(
            w,
            "GPU     GPU       Name             Profile   Instance   Placement",
        ),
        Line::new(w)
            .left(
                8,
                "Instance                       ID        ID       Start:Size",
            )
            .done(),
        Line::new(w).left(10, "ID").done(),
    ];
    boxed_table(w, "Compute instances:", &header, rows, |r| {
        vec![
            Line::new(w)
                .right(5, &r.gpu.to_string())
                .right(12, &r.gi_id.0.to_string())
                .left(19, &format!("MIG {}", r.name))
                .right(41, &r.profile_id.0.to_string())
                .right(51, &r.ci_id.0.to_string())
                .right(62, &r.placement.start.to_string())
                .left(62, &format!(":{}", r.placement.size))
                .done(),
        ]
    })
}

/// `list` (`nvidia-smi -L`): each GPU, then its MIG devices numbered from 0 under it.
pub fn list_lines(list: &ListOutput) -> String {
    let mut out = String::new();
    for g in &list.gpus {
        push(
            &mut out,
            format!("GPU {}: {} (UUID: {})", g.index, g.name, g.uuid),
        );
        for (n, d) in g.mig_devices.iter().enumerate() {
            push(
                &mut out,
                format!("  {:<15} Device {:2}: (UUID: {})", d.name, n, d.uuid),
            );
        }
    }
    out
}

/// `Successfully created GPU instance ID  1 on GPU  0 using profile MIG 3g.20gb (ID  9)`.
pub fn created_gi_line(r: &GiRow) -> String {
    format!(
        "Successfully created GPU instance ID {:2} on GPU {:2} using profile MIG {} (ID {:2})",
        r.gi_id.0, r.gpu, r.name, r.profile_id.0
    )
}

/// `Successfully created compute instance ID  0 on GPU  0 GPU instance ID  1 using profile …`.
pub fn created_ci_line(r: &CiRow) -> String {
    format!(
        "Successfully created compute instance ID {:2} on GPU {:2} GPU instance ID {:2} using profile MIG {} (ID {:2})",
        r.ci_id.0, r.gpu, r.gi_id.0, r.name, r.profile_id.0
    )
}

/// `Successfully destroyed GPU instance ID  7 from GPU  0`.
pub fn destroyed_gi_line(r: &DestroyedGi) -> String {
    format!(
        "Successfully destroyed GPU instance ID {:2} from GPU {:2}",
        r.gi_id.0, r.gpu
    )
}

/// `Successfully destroyed compute instance ID  0 from GPU  0 GPU instance ID  7`.
pub fn destroyed_ci_line(r: &DestroyedCi) -> String {
    format!(
        "Successfully destroyed compute instance ID {:2} from GPU {:2} GPU instance ID {:2}",
        r.ci_id.0, r.gpu, r.gi_id.0
    )
}

/// `mig mode` text: the state, and when current and pending differ, how to apply it on ESXi.
pub fn mode_lines(m: &ModeOutput) -> String {
    let word = |s: &str| {
        if s == "enabled" {
            "Enabled"
        } else {
            "Disabled"
        }
    };
    let mut out = String::new();
    push(
        &mut out,
        format!(
            "MIG mode on GPU {} ({}): current {}, pending {}",
            m.gpu,
            m.pci_bus_id,
            word(m.mig_mode.current),
            word(m.mig_mode.pending)
        ),
    );
    if m.reset_required {
        let verb = if m.mig_mode.pending == "enabled" {
            "enable"
        } else {
            "disable"
        };
        let why = m
            .activation_status
            .as_deref()
            .map(|s| format!(" (activation status {s})"))
            .unwrap_or_default();
        push(
            &mut out,
            format!(
                "MIG mode is pending {verb} on GPU {}{why}: to make it effective, {}",
                m.gpu,
                crate::error::how_to_apply_mig_mode(m.gpu)
            ),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(start: u32, size: u32) -> Placement {
        Placement { start, size }
    }

    #[allow(clippy::too_many_arguments)]
    fn gip(
        id: u32,
        name: &str,
        free: u32,
        total: u32,
        mib: u64,
        sm: u32,
        e: [u32; 5],
    ) -> GiProfileRow {
        GiProfileRow {
            gpu: 0,
            profile_id: GiProfileId(id),
            name: name.into(),
            instances_free: free,
            instances_total: total,
            memory_mib: mib,
            engines: EngineCounts {
                sm,
                dec: e[0],
                enc: e[1],
                ce: e[2],
                jpeg: e[3],
                ofa: e[4],
            },
            p2p: false,
        }
    }

    #[test]
    fn lgip_matches_nvidia_smi_columns() {
        let t = gi_profiles_table(
            &[
                gip(19, "1g.5gb", 0, 7, 4864, 14, [0, 0, 1, 0, 0]),
                gip(20, "1g.5gb+me", 0, 1, 4864, 14, [1, 0, 1, 1, 1]),
            ],
            TableStyle::Narrow,
        );
        // The exact transcript of a real A100-PCIE-40GB (nvml-mig.md §6).
        let expected = "\
+-----------------------------------------------------------------------------+
| GPU instance profiles:                                                      |
| GPU   Name             ID    Instances   Memory     P2P    SM    DEC   ENC  |
|                              Free/Total   GiB              CE    JPEG  OFA  |
|=============================================================================|
|   0  MIG 1g.5gb        19     0/7        4.75       No     14     0     0   |
|                                                             1     0     0   |
+-----------------------------------------------------------------------------+
|   0  MIG 1g.5gb+me     20     0/1        4.75       No     14     1     0   |
|                                                             1     1     1   |
+-----------------------------------------------------------------------------+
";
        assert_eq!(t, expected);
    }

    fn gi_row(gi: u32, pid: u32, name: &str, placement: Placement) -> GiRow {
        GiRow {
            gpu: 0,
            gi_id: GpuInstanceId(gi),
            profile_id: GiProfileId(pid),
            name: name.into(),
            placement,
        }
    }

    /// Real tables of driver 580.126.09 (an A100-SXM4-40GB): the name column two wider.
    #[test]
    fn wide_lgip_and_lgi_match_newer_drivers() {
        let t = gi_profiles_table(
            &[gip(19, "1g.5gb", 7, 7, 4864, 14, [0, 0, 1, 0, 0])],
            TableStyle::Wide,
        );
        let expected = "\
+-------------------------------------------------------------------------------+
| GPU instance profiles:                                                        |
| GPU   Name               ID    Instances   Memory     P2P    SM    DEC   ENC  |
|                                Free/Total   GiB              CE    JPEG  OFA  |
|===============================================================================|
|   0  MIG 1g.5gb          19     7/7        4.75       No     14     0     0   |
|                                                               1     0     0   |
+-------------------------------------------------------------------------------+
";
        assert_eq!(t, expected);
        let t = gis_table(
            &[
                gi_row(9, 19, "1g.5gb", p(6, 1)),
                gi_row(3, 14, "2g.10gb", p(4, 2)),
                gi_row(2, 5, "4g.20gb", p(0, 4)),
            ],
            TableStyle::Wide,
        );
        let expected = "\
+---------------------------------------------------------+
| GPU instances:                                          |
| GPU   Name               Profile  Instance   Placement  |
|                            ID       ID       Start:Size |
|=========================================================|
|   0  MIG 1g.5gb            19        9          6:1     |
+---------------------------------------------------------+
|   0  MIG 2g.10gb           14        3          4:2     |
+---------------------------------------------------------+
|   0  MIG 4g.20gb            5        2          0:4     |
+---------------------------------------------------------+
";
        assert_eq!(t, expected);
        // The longest name fills the wide column (580.105.08, an RTX PRO 6000).
        let t = gi_profiles_table(
            &[gip(65, "1g.24gb+me.all", 1, 1, 24192, 46, [4, 4, 1, 4, 1])],
            TableStyle::Wide,
        );
        assert!(
            t.contains(
                "|   0  MIG 1g.24gb+me.all  65     1/1        23.62      No     46     4     4   |"
            ),
            "{t}"
        );
    }

    #[test]
    fn table_style_follows_the_driver() {
        use TableStyle::{Narrow, Wide};
        for (v, want) in [
            (Some("510.47.03"), Narrow),
            (Some("550.54.15"), Narrow),
            (Some("570.86.15"), Narrow),
            (Some("570.169"), Wide),
            (Some("575.57.08"), Wide),
            (Some("580.173.02"), Wide),
            (Some("garbage"), Wide),
            (None, Wide),
        ] {
            assert_eq!(TableStyle::of_driver(v), want, "{v:?}");
        }
    }

    #[test]
    fn lgi_matches_nvidia_smi_columns() {
        let t = gis_table(
            &[
                gi_row(11, 19, "1g.5gb", p(0, 1)),
                gi_row(1, 9, "3g.20gb", p(4, 4)),
            ],
            TableStyle::Narrow,
        );
        let expected = "\
+-------------------------------------------------------+
| GPU instances:                                        |
| GPU   Name             Profile  Instance   Placement  |
|                          ID       ID       Start:Size |
|=======================================================|
|   0  MIG 1g.5gb          19       11          0:1     |
+-------------------------------------------------------+
|   0  MIG 3g.20gb          9        1          4:4     |
+-------------------------------------------------------+
";
        assert_eq!(t, expected);
        assert_eq!(
            gis_table(&[], TableStyle::Wide),
            "No GPU instances found: Not Found\n"
        );
    }

    #[test]
    fn lcip_matches_nvidia_smi_columns() {
        let row = |pid, name: &str, free, total, sm, default| CiProfileRow {
            gpu: 0,
            gi_id: GpuInstanceId(3),
            profile_id: CiProfileId(pid),
            name: name.into(),
            instances_free: free,
            instances_total: total,
            engines: EngineCounts {
                sm,
                ce: 2,
                dec: 1,
                enc: 0,
                jpeg: 0,
                ofa: 0,
            },
            default,
        };
        let t = ci_profiles_table(&[
            row(0, "1c.2g.10gb", 0, 2, 14, false),
            row(1, "2g.10gb", 0, 1, 28, true),
        ]);
        let expected = "\
+--------------------------------------------------------------------------------------+
| Compute instance profiles:                                                           |
| GPU     GPU       Name             Profile  Instances   Exclusive       Shared       |
|       Instance                       ID     Free/Total     SM       DEC   ENC   OFA  |
|         ID                                                          CE    JPEG       |
|======================================================================================|
|   0      3       MIG 1c.2g.10gb       0      0/2           14        1     0     0   |
|                                                                      2     0         |
+--------------------------------------------------------------------------------------+
|   0      3       MIG 2g.10gb          1*     0/1           28        1     0     0   |
|                                                                      2     0         |
+--------------------------------------------------------------------------------------+
";
        assert_eq!(t, expected);
    }

    #[test]
    fn lci_matches_nvidia_smi_columns() {
        let row = |gi, name: &str| CiRow {
            gpu: 0,
            gi_id: GpuInstanceId(gi),
            ci_id: ComputeInstanceId(0),
            profile_id: CiProfileId(0),
            name: name.into(),
            placement: p(0, 1),
        };
        let t = cis_table(&[row(11, "1g.5gb"), row(6, "1c.2g.10gb")]);
        let expected = "\
+--------------------------------------------------------------------+
| Compute instances:                                                 |
| GPU     GPU       Name             Profile   Instance   Placement  |
|       Instance                       ID        ID       Start:Size |
|         ID                                                         |
|====================================================================|
|   0     11       MIG 1g.5gb           0         0          0:1     |
+--------------------------------------------------------------------+
|   0      6       MIG 1c.2g.10gb       0         0          0:1     |
+--------------------------------------------------------------------+
";
        assert_eq!(t, expected);
        assert_eq!(cis_table(&[]), "No compute instances found: Not Found\n");
    }

    #[test]
    fn lgipp_and_messages_match_nvidia_smi() {
        let row = |id, pl: Vec<Placement>| GiPlacementsRow {
            gpu: 0,
            profile_id: GiProfileId(id),
            name: String::new(),
            placements: pl,
        };
        let t = gi_placements_lines(&[
            row(19, (0..7).map(|s| p(s, 1)).collect()),
            row(9, vec![p(0, 4), p(4, 4)]),
            row(0, vec![p(0, 8)]),
        ]);
        assert_eq!(
            t,
            "GPU  0 Profile ID 19 Placements: {0,1,2,3,4,5,6}:1\n\
             GPU  0 Profile ID  9 Placements: {0,4}:4\n\
             GPU  0 Profile ID  0 Placement : {0}:8\n"
        );
        let gi = GiRow {
            gpu: 0,
            gi_id: GpuInstanceId(1),
            profile_id: GiProfileId(9),
            name: "3g.20gb".into(),
            placement: p(4, 4),
        };
        assert_eq!(
            created_gi_line(&gi),
            "Successfully created GPU instance ID  1 on GPU  0 using profile MIG 3g.20gb (ID  9)"
        );
        let ci = CiRow {
            gpu: 0,
            gi_id: GpuInstanceId(11),
            ci_id: ComputeInstanceId(0),
            profile_id: CiProfileId(0),
            name: "1g.5gb".into(),
            placement: p(0, 1),
        };
        assert_eq!(
            created_ci_line(&ci),
            "Successfully created compute instance ID  0 on GPU  0 GPU instance ID 11 using profile MIG 1g.5gb (ID  0)"
        );
        let d = DestroyedCi {
            gpu: 0,
            gi_id: GpuInstanceId(7),
            ci_id: ComputeInstanceId(0),
        };
        assert_eq!(
            destroyed_ci_line(&d),
            "Successfully destroyed compute instance ID  0 from GPU  0 GPU instance ID  7"
        );
        let d = DestroyedGi {
            gpu: 0,
            gi_id: GpuInstanceId(7),
        };
        assert_eq!(
            destroyed_gi_line(&d),
            "Successfully destroyed GPU instance ID  7 from GPU  0"
        );
    }

    #[test]
    fn list_and_mode_snapshots() {
        let list = ListOutput {
            gpus: vec![ListGpu {
                index: 0,
                name: "NVIDIA A100-PCIE-40GB".into(),
                uuid: "GPU-14ac2834-0d81-0508-69eb-e25264c08d21".into(),
                mig_mode: Some(ModeJson::new(true, true)),
                mig_devices: vec![ListMigDevice {
                    gi_id: GpuInstanceId(1),
                    ci_id: ComputeInstanceId(0),
                    name: "MIG 1g.5gb".into(),
                    uuid: "MIG-b6cd45f2-9655-5269-9b96-65446729d5dc".into(),
                    memory_mib: Some(4864),
                }],
            }],
        };
        insta::assert_snapshot!("list", list_lines(&list));
        insta::assert_json_snapshot!("list_json", list);
        let mode = ModeOutput {
            gpu: 0,
            pci_bus_id: "00000000:3B:00.0".into(),
            mig_mode: ModeJson::new(false, true),
            activation_status: Some("NVML_ERROR_RESET_REQUIRED".into()),
            reset_required: true,
        };
        insta::assert_snapshot!("mode_pending", mode_lines(&mode));
    }
}
