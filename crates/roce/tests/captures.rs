//! The reference captures are readable and hold the frames their README lists.

mod support;

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
        assert_eq!(support::frames(stem).len(), n, "{stem}");
    }
}

/// Every captured rxe frame prints as one line, none as malformed, and the
/// connection's CM exchange reads in order (what a failing seed's trace
/// relies on).
#[test]
fn every_captured_frame_prints_as_one_summary_line() {
    use roce::wire::pretty::Pretty;
    for (stem, i, frame) in support::all_frames() {
        let line = Pretty::frame(&frame).to_string();
        assert!(!line.contains("malformed"), "{stem} #{i}: {line}");
        assert!(!line.contains('\n'), "{stem} #{i}: {line}");
        assert!(line.contains(".4791: "), "{stem} #{i}: {line}");
    }
    let lines: Vec<String> = support::frames("ucmatose")
        .iter()
        .map(|f| Pretty::frame(f).to_string())
        .collect();
    let cm: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.split(" CM ").nth(1))
        .map(|m| m.split(' ').next().unwrap_or(""))
        .collect();
    let req = cm.iter().position(|m| *m == "REQ").expect("a REQ");
    let rep = cm.iter().position(|m| *m == "REP").expect("a REP");
    let rtu = cm.iter().position(|m| *m == "RTU").expect("an RTU");
    assert!(req < rep && rep < rtu, "{cm:?}");
    assert!(cm.contains(&"DREQ") && cm.contains(&"DREP"), "{cm:?}");
}
