//! The GI profile table shared by the 7-slice, 8-memory-slice parts since Hopper (H100, H200,
//! GH200, B200): the same profile ids, counts and placements; the parts differ in memory per
//! slice, SMs and copy engines. Declared before the modules that use it (`macro_use`).

/// Build one GI profile table of the Hopper geometry.
/// `gb`: the GB figures in the names (1-slice, 2-memory-slice, 4-memory-slice, full);
/// `mem`: `memorySizeMB` for the same four sizes; `sm`: SMs of the 1g, double-memory 1g, 2g,
/// 3g, 4g and 7g profiles; `ce`: copy engines of the same six. A partial CI of `c` slices
/// gets the SMs of the `c`g GI (inferred); the CI of a double-memory 1g GI those of the 1g.
macro_rules! seven_slice_profiles {
    ($table:ident, gb: [$g1:literal, $g2:literal, $g4:literal, $g8:literal],
     mem: [$m1:literal, $m2:literal, $m4:literal, $m8:literal],
     sm: [$s1:literal, $s1x:literal, $s2:literal, $s3:literal, $s4:literal, $s7:literal],
     ce: [$c1:literal, $c1x:literal, $c2:literal, $c3:literal, $c4:literal, $c7:literal]) => {
        const $table: &[GiProfile] = &[
            gi(
                19,
                idx::SLICE_1,
                concat!("1g.", $g1, "gb"),
                [1, 1],
                7,
                $m1,
                $s1,
                [$c1, 1, 0, 1, 0],
                GP_1,
                &[ci(0, concat!("1g.", $g1, "gb"), 1, 1, $s1, CP_1_IN_1, true)],
            ),
            gi(
                14,
                idx::SLICE_2,
                concat!("2g.", $g2, "gb"),
                [2, 2],
                3,
                $m2,
                $s2,
                [$c2, 2, 0, 2, 0],
                GP_2,
                &[
                    ci(0, concat!("1c.2g.", $g2, "gb"), 1, 2, $s1, CP_1_IN_2, false),
                    ci(1, concat!("2g.", $g2, "gb"), 2, 1, $s2, CP_2_IN_2, true),
                ],
            ),
            gi(
                9,
                idx::SLICE_3,
                concat!("3g.", $g4, "gb"),
                [3, 4],
                2,
                $m4,
                $s3,
                [$c3, 3, 0, 3, 0],
                GP_4,
                &[
                    ci(0, concat!("1c.3g.", $g4, "gb"), 1, 3, $s1, CP_1_IN_3, false),
                    ci(1, concat!("2c.3g.", $g4, "gb"), 2, 1, $s2, CP_2_IN_3, false),
                    ci(2, concat!("3g.", $g4, "gb"), 3, 1, $s3, CP_3_IN_3, true),
                ],
            ),
            gi(
                5,
                idx::SLICE_4,
                concat!("4g.", $g4, "gb"),
                [4, 4],
                1,
                $m4,
                $s4,
                [$c4, 4, 0, 4, 0],
                GP_4_LEFT,
                &[
                    ci(0, concat!("1c.4g.", $g4, "gb"), 1, 4, $s1, CP_1_IN_4, false),
                    ci(1, concat!("2c.4g.", $g4, "gb"), 2, 2, $s2, CP_2_IN_4, false),
                    ci(3, concat!("4g.", $g4, "gb"), 4, 1, $s4, CP_4_IN_4, true),
                ],
            ),
            gi(
                0,
                idx::SLICE_7,
                concat!("7g.", $g8, "gb"),
                [7, 8],
                1,
                $m8,
                $s7,
                [$c7, 7, 0, 7, 1],
                GP_8,
                &[
                    ci(0, concat!("1c.7g.", $g8, "gb"), 1, 7, $s1, CP_1_IN_7, false),
                    ci(1, concat!("2c.7g.", $g8, "gb"), 2, 3, $s2, CP_2_IN_7, false),
                    ci(2, concat!("3c.7g.", $g8, "gb"), 3, 2, $s3, CP_3_IN_7, false),
                    ci(3, concat!("4c.7g.", $g8, "gb"), 4, 1, $s4, CP_4_IN_7, false),
                    ci(4, concat!("7g.", $g8, "gb"), 7, 1, $s7, CP_7_IN_7, true),
                ],
            ),
            gi(
                20,
                idx::SLICE_1_REV1,
                concat!("1g.", $g1, "gb+me"),
                [1, 1],
                1,
                $m1,
                $s1,
                [$c1, 1, 0, 1, 1],
                GP_1,
                &[ci(
                    0,
                    concat!("1g.", $g1, "gb+me"),
                    1,
                    1,
                    $s1,
                    CP_1_IN_1,
                    true,
                )],
            ),
            gi(
                15,
                idx::SLICE_1_REV2,
                concat!("1g.", $g2, "gb"),
                [1, 2],
                4,
                $m2,
                $s1x,
                [$c1x, 1, 0, 1, 0],
                GP_2_ALL,
                // The GI lists more SMs than the plain 1g, but the CI in it, and so the MIG
                // device, has the plain 1g's (docs/mig-model.md, "Compute-instance profiles").
                &[ci(7, concat!("1g.", $g2, "gb"), 1, 1, $s1, CP_1_IN_1, true)],
            ),
        ];
    };
}
