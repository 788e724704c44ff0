use super::*;

#[test]
fn many_ended_merges_are_dropped_without_recursion() {
    // 200,000 one-cell merges on row 0, then a look-up right of them
    // on row 1: each is dropped in turn (the stack once overflowed).
    let regions: Vec<Region> = (0..200_000)
        .map(|column| Region {
            top: 0,
            left: column,
            bottom: 0,
            right: column,
        })
        .collect();
    let mut sweep = MergeSweep::new(regions);
    assert_eq!(sweep.covering(0, 5), None);
    assert_eq!(sweep.covering(1, 300_000), None);
}

#[test]
fn an_ods_number_is_shown_as_itself_or_grouped() {
    for (shown, value) in [
        ("5", "5"),
        ("5.00", "5"),
        ("1,234", "1234"),
        ("1.234,00", "1234"),
        ("1\u{a0}234", "1234"),
        ("000006", "6"),
        ("0", "0"),
        ("0.5", "0.5"),
        ("5,000", "5"),
        ("5,000", "5000"),
    ] {
        assert!(shows_number(shown, value), "{shown} {value}");
    }
    for (shown, value) in [
        ("7", "5"),
        ("5,00 €", "5"),
        ("500%", "5"),
        ("50", "5"),
        ("12", "1"),
        ("1.2", "12"),
        ("5,000", "5000000"),
    ] {
        assert!(!shows_number(shown, value), "{shown} {value}");
    }
}

#[test]
fn built_in_formats_without_a_code_are_told_by_their_id() {
    let currency = Some(Mark::Format("a currency".into()));
    for id in 5..=8 {
        assert_eq!(xlsx_number_format_mark("General", Some(id)), currency);
    }
    assert_eq!(
        xlsx_number_format_mark("General", Some(31)),
        Some(Mark::Format("the built-in format 31".into()))
    );
    assert_eq!(xlsx_number_format_mark("General", Some(0)), None);
    assert_eq!(xlsx_number_format_mark("General", None), None);
    assert_eq!(xlsx_number_format_mark("0", Some(1)), None);
    // A workbook's own format of such an id is read by its code.
    assert_eq!(xlsx_number_format_mark("0", Some(164)), None);
}

#[test]
fn a_long_format_code_is_named_by_its_start() {
    let code = format!("0{}", "\"x\"".repeat(50_000));
    let Some(Mark::Format(named)) = xlsx_format_mark(&code) else {
        panic!("a format")
    };
    assert!(named.len() < 120, "{named}");
    assert!(named.ends_with('…'), "{named}");
}

#[test]
fn formats_are_told_by_their_code() {
    let cases = [
        ("General", None),
        ("0", None),
        ("@", None),
        (";;;", Some(Mark::FormatHides)),
        ("000000", None),
        ("0,", Some(Mark::Format("the format \"0,\"".into()))),
        (
            "0.00E+00",
            Some(Mark::Format("the format \"0.00E+00\"".into())),
        ),
        ("0%", Some(Mark::Format("a percentage".into()))),
        (
            "#,##0.00\\ [$€-407]",
            Some(Mark::Format("a currency".into())),
        ),
        (
            "\"%\"0",
            Some(Mark::Format("the format \"\\\"%\\\"0\"".into())),
        ),
    ];
    for (code, want) in cases {
        assert_eq!(xlsx_format_mark(code), want, "{code}");
    }
}

#[test]
fn merges_are_found_by_a_sweep_in_row_order() {
    let region = Region {
        top: 1,
        left: 1,
        bottom: 3,
        right: 2,
    };
    let mut sweep = MergeSweep::new(vec![region]);
    assert_eq!(sweep.covering(0, 1), None);
    assert_eq!(sweep.covering(1, 1), None);
    assert_eq!(sweep.covering(1, 2), Some(region));
    assert_eq!(sweep.covering(2, 0), None);
    assert_eq!(sweep.covering(3, 1), Some(region));
    assert_eq!(sweep.covering(4, 1), None);
}

#[test]
fn cell_names_and_escapes_are_read() {
    assert_eq!(cell_position("A1"), Some((0, 0)));
    assert_eq!(cell_position("B7"), Some((6, 1)));
    assert_eq!(cell_position("XFD1048576"), Some((1_048_575, 16_383)));
    assert_eq!(cell_position("A0"), None);
    assert!(has_escape("_x0041_") && has_escape("a_x00e9_b"));
    assert!(!has_escape("_x004_") && !has_escape("x0041"));
}

#[test]
fn ranges_are_joined_and_found() {
    let ranges = tidy(vec![(5, 6), (1, 2), (3, 3)]);
    assert_eq!(ranges, [(1, 3), (5, 6)]);
    assert!(in_ranges(&ranges, 3) && in_ranges(&ranges, 5));
    assert!(!in_ranges(&ranges, 0) && !in_ranges(&ranges, 4) && !in_ranges(&ranges, 7));
}
