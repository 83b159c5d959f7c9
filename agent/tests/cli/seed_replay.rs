//! The seed's real session, replayed value for value: an A100-PCIE-40GB on ESXi with driver
//! 510.47.03 (source: docs/mig-model.md, "The seed's ESXi session"; the text below is the
//! nvidia-smi output of that session). `nvml-sim init --driver-version 510.47.03 --platform
//! esxi` must make `vmig-agent mig …` print the same ids, placements, memory column, Free
//! column and row order. Only the MIG device UUID differs (it is random per machine).
use crate::harness::Host;

/// `nvidia-smi mig -lgip` on the seed host, MIG on, no GPU instance yet.
const SEED_LGIP: &str = "\
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
|   0  MIG 2g.10gb       14     0/3        9.75       No     28     1     0   |
|                                                             2     0     0   |
+-----------------------------------------------------------------------------+
|   0  MIG 3g.20gb        9     0/2        19.62      No     42     2     0   |
|                                                             3     0     0   |
+-----------------------------------------------------------------------------+
|   0  MIG 4g.20gb        5     0/1        19.62      No     56     2     0   |
|                                                             4     0     0   |
+-----------------------------------------------------------------------------+
|   0  MIG 7g.40gb        0     0/1        39.50      No     98     5     0   |
|                                                             7     1     1   |
+-----------------------------------------------------------------------------+
";

/// `nvidia-smi mig -cgi 9,19,14,19`.
const SEED_CGI: &str = "\
Successfully created GPU instance ID  1 on GPU  0 using profile MIG 3g.20gb (ID  9)
Successfully created GPU instance ID 11 on GPU  0 using profile MIG 1g.5gb (ID 19)
Successfully created GPU instance ID  6 on GPU  0 using profile MIG 2g.10gb (ID 14)
Successfully created GPU instance ID 12 on GPU  0 using profile MIG 1g.5gb (ID 19)
";

/// `nvidia-smi mig -lgi` after that: rows in profile order, not by id.
const SEED_LGI: &str = "\
+-------------------------------------------------------+
| GPU instances:                                        |
| GPU   Name             Profile  Instance   Placement  |
|                          ID       ID       Start:Size |
|=======================================================|
|   0  MIG 1g.5gb          19       11          0:1     |
+-------------------------------------------------------+
|   0  MIG 1g.5gb          19       12          1:1     |
+-------------------------------------------------------+
|   0  MIG 2g.10gb         14        6          2:2     |
+-------------------------------------------------------+
|   0  MIG 3g.20gb          9        1          4:4     |
+-------------------------------------------------------+
";

/// `nvidia-smi mig -gi N -cci 0` for GIs 11, 12, 6 and 1, in the seed's order.
const SEED_CCI: [(&str, &str); 4] = [
    (
        "11",
        "Successfully created compute instance ID  0 on GPU  0 GPU instance ID 11 using profile MIG 1g.5gb (ID  0)\n",
    ),
    (
        "12",
        "Successfully created compute instance ID  0 on GPU  0 GPU instance ID 12 using profile MIG 1g.5gb (ID  0)\n",
    ),
    (
        "6",
        "Successfully created compute instance ID  0 on GPU  0 GPU instance ID  6 using profile MIG 1c.2g.10gb (ID  0)\n",
    ),
    (
        "1",
        "Successfully created compute instance ID  0 on GPU  0 GPU instance ID  1 using profile MIG 1c.3g.20gb (ID  0)\n",
    ),
];

/// `nvidia-smi mig -gi 11 -lci` after the first `-cci`.
const SEED_LCI_GI11: &str = "\
+--------------------------------------------------------------------+
| Compute instances:                                                 |
| GPU     GPU       Name             Profile   Instance   Placement  |
|       Instance                       ID        ID       Start:Size |
|         ID                                                         |
|====================================================================|
|   0     11       MIG 1g.5gb           0         0          0:1     |
+--------------------------------------------------------------------+
";

/// `nvidia-smi mig -i 0 -lci` after all four: GIs in profile order again.
const SEED_LCI: &str = "\
+--------------------------------------------------------------------+
| Compute instances:                                                 |
| GPU     GPU       Name             Profile   Instance   Placement  |
|       Instance                       ID        ID       Start:Size |
|         ID                                                         |
|====================================================================|
|   0     11       MIG 1g.5gb           0         0          0:1     |
+--------------------------------------------------------------------+
|   0     12       MIG 1g.5gb           0         0          0:1     |
+--------------------------------------------------------------------+
|   0      6       MIG 1c.2g.10gb       0         0          0:1     |
+--------------------------------------------------------------------+
|   0      1       MIG 1c.3g.20gb       0         0          0:1     |
+--------------------------------------------------------------------+
";

/// `nvidia-smi -L` after the first `-cci` (UUIDs differ per machine: compared by shape).
const SEED_L: [&str; 2] = [
    "GPU 0: NVIDIA A100-PCIE-40GB (UUID: GPU-",
    "  MIG 1g.5gb      Device  0: (UUID: MIG-",
];

fn seed_host() -> Host {
    let host = Host::with_args(
        &["a100-pcie-40gb"],
        &["--driver-version", "510.47.03", "--platform", "esxi"],
    );
    // nvidia-smi -i 0 -mig 1: pending, activation "Not Supported", effective after a reboot.
    let j = host.json(&["mig", "mode", "-i", "0", "--enable"]);
    assert_eq!(j["mig_mode"]["pending"], "enabled", "{j}");
    assert_eq!(j["mig_mode"]["current"], "disabled", "{j}");
    host.sim(&["reset", "-i", "0"]);
    host
}

fn assert_same(what: &str, ours: &str, seed: &str) {
    assert_eq!(ours, seed, "`{what}` differs from the seed's output");
}

#[test]
fn the_seed_session_replays_value_for_value() {
    let host = seed_host();
    assert_same("mig -lgip", &host.ok(&["mig", "lgip"]), SEED_LGIP);
    // Profile 15 (1g.10gb) does not exist on driver 510.
    let err = host.fails(&["mig", "cgi", "-i", "0", "15"], 2);
    assert!(err.contains("unknown GPU instance profile '15'"), "{err}");
    assert_same(
        "mig -cgi 9,19,14,19",
        &host.ok(&["mig", "cgi", "-i", "0", "9,19,14,19"]),
        SEED_CGI,
    );
    assert_same("mig -lgi", &host.ok(&["mig", "lgi"]), SEED_LGI);

    let (gi, text) = SEED_CCI[0];
    assert_same(
        "mig -gi 11 -cci 0",
        &host.ok(&["mig", "cci", "-i", "0", "--gi", gi, "0"]),
        text,
    );
    assert_same(
        "mig -gi 11 -lci",
        &host.ok(&["mig", "lci", "-i", "0", "--gi", "11"]),
        SEED_LCI_GI11,
    );
    let list = host.ok(&["list"]);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    for (line, seed) in lines.iter().zip(SEED_L) {
        assert!(
            line.starts_with(seed),
            "`-L` line {line:?} does not start like {seed:?}"
        );
        assert!(line.ends_with(')'), "{line}");
    }
    for (gi, text) in &SEED_CCI[1..] {
        assert_same(
            &format!("mig -gi {gi} -cci 0"),
            &host.ok(&["mig", "cci", "-i", "0", "--gi", gi, "0"]),
            text,
        );
    }
    assert_same(
        "mig -i 0 -lci",
        &host.ok(&["mig", "lci", "-i", "0"]),
        SEED_LCI,
    );
}
