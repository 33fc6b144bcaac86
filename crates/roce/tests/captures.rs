//! The reference captures are readable and hold the frames their README lists.

mod common;

#[test]
fn every_capture_has_the_documented_frame_count() {
    // Counts from tests/data/README.md and the Linux rxe captures in crates/roce/tests/data
    let expected = [
        ("dreq-frozen-peer", 19),
        ("reject", 2),
        ("rnr", 46),
        ("rping-multi", 65),
        ("rping-small", 29),
        ("server-disconnect", 45),
        ("ucmatose", 42),
    ];
    for (stem, n) in expected {
        assert_eq!(common::frames(stem).len(), n, "{stem}");
    }
}
