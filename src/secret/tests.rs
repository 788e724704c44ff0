use super::*;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

mod spellings;
use spellings::{RAW_INVISIBLE, WHATWG_NAMES};

fn blank(key: &str, text: &str) -> String {
    Blanker::new(key).blank(Cow::Borrowed(text)).into_owned()
}

#[test]
fn every_spelling_of_the_key_is_blanked() {
    let key = "12345$ab/cd\"e&f<g>h'i+j k%l";
    let echoed = format!("key {key} echoed");
    let cases = [
        ("no key here", "no key here"),
        (echoed.as_str(), "key *** echoed"),
        (r#"bad 12345$ab\/cd\"e&f<g>h'i+j k%l."#, "bad ***."),
        (r"bad 12345\u0024ab/cd\u0022e&f<g>h'i+j k%l.", "bad ***."),
        (
            "u=12345%24ab%2Fcd%22e%26f%3Cg%3Eh%27i%2Bj%20k%25l&x",
            "u=***&x",
        ),
        (
            "u=12345%24ab%2fcd%22e%26f%3cg%3eh%27i%2bj+k%25l&x",
            "u=***&x",
        ),
        (
            "<p>12345$ab/cd&quot;e&amp;f&lt;g&gt;h&#39;i+j k%l</p>",
            "<p>***</p>",
        ),
        (
            "<p>12345&#x24;ab&#47;cd&#34;e&amp;f&lt;g&gt;h&#x27;i+j k%l</p>",
            "<p>***</p>",
        ),
        // A prefix of 12 characters or more, in any spelling.
        ("cut: 12345$ab/cd\"…", "cut: ***…"),
        ("cut: 12345%24ab%2Fcd%22…", "cut: ***…"),
        ("cut: 12345%24ab%2Fcd…", "cut: 12345%24ab%2Fcd…"),
        // Eleven is not enough.
        ("cut: 12345$ab/c…", "cut: 12345$ab/c…"),
    ];
    for (text, want) in cases {
        assert_eq!(blank(key, text), want, "{text}");
    }
    // A short key is blanked only whole.
    assert_eq!(
        blank("ab/cd", r#"{"m":"ab\/cd ab/c"}"#),
        r#"{"m":"*** ab/c"}"#
    );
    assert!(matches!(
        Blanker::new(key).blank(Cow::Borrowed("clean")),
        Cow::Borrowed(_)
    ));
    assert_eq!(blank("", "text"), "text");
    assert!(!Blanker::new("").finds_in("text"));
}

#[test]
fn a_run_from_the_end_or_the_middle_of_the_key_is_blanked() {
    let key = "AbCdEfGhIjKl$MnOpQrStUv/WxYz0123456789";
    let cases = [
        // A server that cut the key from the left, or kept its middle.
        ("k=...0123456789 end", "k=...0123456789 end"),
        ("k=...Yz0123456789 end", "k=...*** end"),
        ("k=...StUv/WxYz0123456789 end", "k=...*** end"),
        ("k=…Kl$MnOpQrStU…", "k=…***…"),
        ("k=…Kl$MnOpQrSt…", "k=…Kl$MnOpQrSt…"),
        // In each spelling, any mix.
        ("k=StUv%2FWxYz0123", "k=***"),
        (r"k=StUv\/WxYz0123", "k=***"),
        ("k=StUv&#47;WxYz0123", "k=***"),
        ("k=jKl%24MnOpQrStU", "k=***"),
        // Two runs, each blanked.
        ("a=EfGhIjKl$MnOp b=Yz0123456789x", "a=*** b=***x"),
    ];
    for (text, want) in cases {
        assert_eq!(blank(key, text), want, "{text}");
    }
}

#[test]
fn the_key_in_either_case_is_blanked() {
    let key = "AbCdEfGhIjKl$MnOpQrStUv/WxYz";
    let cases = [
        ("H: abcdefghijkl$mnopqrstuv/wxyz.", "H: ***."),
        ("H: ABCDEFGHIJKL$MNOPQRSTUV/WXYZ.", "H: ***."),
        ("H: ABCDEFGHIJKL%24MNOPQRSTUV%2fWXYZ.", "H: ***."),
        ("H: pqrstuv/wxyz.", "H: ***."),
        // Eleven, in any case, is not enough.
        ("H: RSTUV/WXYZ.", "H: RSTUV/WXYZ."),
    ];
    for (text, want) in cases {
        assert_eq!(blank(key, text), want, "{text}");
    }
    assert_eq!(blank("s3cret", "is S3CRET."), "is ***.");
}

#[test]
fn a_percent_encoding_encoded_again_is_blanked() {
    let key = "12345$SecretKey/abc+def=ghi&jkl";
    let cases = [
        (
            "u=12345%2524SecretKey%252Fabc%252Bdef%253Dghi%2526jkl",
            "u=***",
        ),
        ("u=12345%25252524SecretKey%2f", "u=***"),
        // Once here, twice there, in any case of the hex digits.
        ("u=12345%24SecretKey%252fabc", "u=***"),
        // Without its `%`, `2524` is no escape: the 9 characters of
        // `SecretKey` are not enough.
        ("u=2524SecretKey", "u=2524SecretKey"),
    ];
    for (text, want) in cases {
        assert_eq!(blank(key, text), want, "{text}");
    }
    // A key with `%` in it, as written, encoded once and twice.
    let key = "50%off-the-Secret-Key";
    for text in [
        "k=50%off-the-Secret",
        "k=50%25off-the-Secret",
        "k=50%2525off-the-Secret",
    ] {
        assert_eq!(blank(key, text), "k=***", "{text}");
    }
}

#[test]
fn the_key_in_base64_is_blanked_with_its_whole_run() {
    let key = "12345$SecretKey/abc+def=ghi&jkl";
    // As a Basic header would carry it, in each alignment.
    for user in ["", "u:", "us:", "use:", "admin:"] {
        let raw = format!("{user}{key}");
        for encoded in [STANDARD.encode(&raw), URL_SAFE_NO_PAD.encode(&raw)] {
            let text = format!("auth: Basic {encoded}, rejected");
            assert_eq!(blank(key, &text), "auth: Basic ***, rejected", "{text}");
            // Cut by the server from the left, at any character.
            for cut in 1..8 {
                let text = format!("auth: …{}", &encoded[cut..]);
                assert_eq!(blank(key, &text), "auth: …***", "{text}");
            }
        }
    }
    // A run of the key's middle, and the key in upper case.
    let encoded = STANDARD.encode(&key[8..26]);
    assert_eq!(blank(key, &format!("t={encoded};")), "t=***;");
    let encoded = STANDARD.encode(key.to_uppercase());
    assert_eq!(blank(key, &format!("t={encoded};")), "t=***;");
    // Escaped by JSON (`\/`) or a URL (`%2B`, `%2F`, `%3D`).
    let encoded = STANDARD.encode(format!("{key}??>~~~"));
    assert!(encoded.contains('/') && encoded.contains('+'), "{encoded}");
    let json = encoded.replace('/', "\\/");
    assert_eq!(
        blank(key, &format!(r#"{{"a":"{json}"}}"#)),
        r#"{"a":"***"}"#
    );
    let url = encoded
        .replace('/', "%2F")
        .replace('+', "%2b")
        .replace('=', "%3D");
    assert_eq!(blank(key, &format!("?a={url}&b")), "?a=***&b");
    // Base64 of 11 key characters, or of other text, stays.
    let encoded = STANDARD.encode(&key[3..14]);
    assert_eq!(blank(key, &encoded), encoded);
    let encoded = STANDARD.encode("nothing of the key, just words");
    assert_eq!(blank(key, &encoded), encoded);
    // A short key whole.
    let encoded = STANDARD.encode("me:s3cret");
    assert_eq!(blank("s3cret", &format!("Basic {encoded}")), "Basic ***");
}

#[test]
fn a_key_that_is_not_ascii_is_blanked_on_character_boundaries() {
    let key = "clé-secrète-ünïcode-𝄞-key";
    assert_eq!(blank(key, &format!("k={key}.")), "k=***.");
    // A run that ends or starts inside a character of the text (the
    // key's U+1D11E and the text's U+1D11F share their first 3 bytes,
    // the key's `è` and the text's `Ũ` their last): the whole
    // character goes, nothing is cut in the middle of one.
    assert_eq!(blank(key, "k=secrète-ünïcode-\u{1d11f}."), "k=***.");
    assert_eq!(blank(key, "k=\u{168}te-ünïcode-."), "k=***.");
    for text in ["clè-secrète", "é-secrète-ün\u{ee}", "ète-ünïcod\u{e8}"] {
        let _ = blank(key, text);
    }
}

#[test]
fn a_key_that_repeats_itself_costs_no_more_than_the_text() {
    // Every start inside an echo reads the same runs: without merging
    // the ways of reading, this is the key's length squared per echo.
    let key = "ab".repeat(2048);
    let text = format!("{}x", "ab".repeat(1000)).repeat(200);
    let blanked = blank(&key, &text);
    assert_eq!(blanked, "***x".repeat(200));
    let key = "a".repeat(4096);
    let text = format!("{}b", "a".repeat(13)).repeat(20_000);
    assert_eq!(blank(&key, &text), "***b".repeat(20_000));
    // Branching spellings: `%25` is `%` or a nested escape's start.
    let key = "%25".repeat(1000);
    let text = "%25".repeat(20_000);
    assert!(Blanker::new(&key).finds_in(&text));
}

#[test]
fn every_html_reference_a_browser_reads_is_blanked() {
    // The blanker's table is searched: it is sorted, each name once.
    assert!(NAMED_REFERENCES.windows(2).all(|w| w[0].0 < w[1].0));
    // Every printable ASCII character, most of them punctuation.
    let key: String = (b' '..=b'~').map(char::from).collect();
    let key = key.trim();
    for (c, names) in WHATWG_NAMES {
        for name in names {
            let text = format!("<p>{}</p>", key.replace(c, &format!("&{name};")));
            assert_eq!(blank(key, &text), "<p>***</p>", "{text}");
        }
    }
    // Also what the named references stand for, by number.
    for (spelled, value) in [("&#xA0;", ' '), ("&#8208;", '-'), ("&#x2DC;", '~')] {
        let text = format!("<p>{}</p>", key.replace(value, spelled));
        assert_eq!(blank(key, &text), "<p>***</p>", "{text}");
    }
    let key = "12345$ab/cd\"e&f<g>h'i+j k%l";
    let cases = [
        // Leading zeros, as many as there are, up to 32 digits.
        ("12345&#x0000000024;ab/cd&quot;e&amp;f", "***"),
        ("12345&#00000000036;ab/cd&quot;e&amp;f", "***"),
        (
            "12345&#X00000000000000000000000000000024;ab/cd&quot;e",
            "***",
        ),
        // No `;`: always for a number, for the legacy names.
        ("12345&#36ab&#x2f;cd&quote&ampf&ltg&GTh'i", "***"),
        ("12345$ab/cd&QUOTe&AMPf&#x3cg&gt;h", "***"),
        // The digits run on as far as they go: `&#x24ab` is U+24AB.
        ("12345&#x24ab/cd\"e&f<g>h", "12345&#x24***"),
        ("cd\"e&f<g>h&#39i&#43j&nbspk&percnt;l", "***"),
        // A legacy name at the start of a longer word is read so.
        ("ab/cd\"e&ampf<g>h'i+", "***"),
    ];
    for (text, want) in cases {
        assert_eq!(blank(key, text), want, "{text}");
    }
    // Not references: more than 32 digits, a name in another case, a
    // name that is not legacy without its `;`. What is left is fewer
    // than 12 key characters on each side.
    for text in [
        "12345&#x000000000000000000000000000000024;abcdefgh",
        "12345&Dollar;abcdefgh",
        "12345&DOLLAR;abcdefgh",
        "12345&dollarabcdefgh",
        "12345&#;abcdefgh",
        "12345&#x;abcdefgh",
        "12345&#36 ;abcdefgh",
    ] {
        assert_eq!(blank("12345$abcdefgh", text), text, "{text}");
    }
    assert_eq!(blank("12345$abcdefgh", "12345&#36abcdefgh"), "***");
}

/// Every character the terminal's escaping hides (not ASCII) is skipped
/// between key characters: its first byte is among those the search
/// stops at, and it reads as invisible.
#[test]
fn every_hidden_character_is_invisible_to_the_search() {
    let mut utf8 = [0; 4];
    for c in (0..=0x10_FFFF).filter_map(char::from_u32) {
        if crate::visible::hidden(c) {
            let bytes = c.encode_utf8(&mut utf8).as_bytes();
            assert!(starts_invisible(bytes[0]), "{c:?}");
            assert_eq!(super::invisible(bytes), Some(bytes.len()), "{c:?}");
        }
    }
    let key = "q7Wm2Zx9Lp4Rt8Yu3Io6Pa1Sd5Fg0HjKcVbNmE";
    for between in [
        '\u{2063}',
        '\u{3164}',
        '\u{e0020}',
        '\u{1d173}',
        '\u{2800}',
        '\u{180e}',
        '\u{7f}',
        '\u{0}',
        '\u{1}',
        '\u{206c}',
        '\u{180d}',
        '\u{1bca1}',
        '\u{16fe4}',
        '\u{fff3}',
        '\u{e0fff}',
        '\u{13430}',
    ] {
        let echo: String = key.chars().flat_map(|c| [c, between]).collect();
        let text = format!("HTTP 400: {echo}!");
        let blanked = Blanker::new(key).blank(text.as_str().into()).into_owned();
        assert!(!blanked.contains("q7Wm"), "{between:?}: {blanked}");
    }
    for name in ["&InvisibleTimes;", "&ic;", "&af;"] {
        let echo: String = key
            .chars()
            .flat_map(|c| [c.to_string(), name.to_string()])
            .collect();
        let blanked = Blanker::new(key).blank(echo.as_str().into()).into_owned();
        assert!(!blanked.contains("q7Wm"), "{name}: {blanked}");
    }
}

#[test]
fn invisible_characters_between_the_key_characters_are_read_through() {
    let key = "kS9d-2fLq_7ZxP0vRt3Wm8YhN4cJ6bGe";
    for (i, invisible) in INVISIBLE.iter().enumerate() {
        assert_eq!(
            invisible.to_string(),
            RAW_INVISIBLE[i],
            "the tests' list is the blanker's"
        );
        let mut utf8 = [0; 4];
        let utf8 = invisible.encode_utf8(&mut utf8).as_bytes();
        assert_eq!(super::invisible(utf8), Some(utf8.len()));
        assert!(starts_invisible(utf8[0]));
        // Between every two characters (the one after the last goes
        // with the echo), or a few at one place.
        let spread: String = key
            .chars()
            .flat_map(|c| [c, *invisible])
            .collect::<String>();
        assert_eq!(blank(key, &format!("k={spread}.")), "k=***.");
        let clustered = format!("{}{invisible}{invisible}{}", &key[..5], &key[5..]);
        assert_eq!(blank(key, &clustered), "***");
    }
    // Escaped in each family, among escaped key characters.
    let key = "12345$SecretKey/abc+def=ghi&jkl";
    for text in [
        "12345\\u200b\\u0024Secret\\ufeffKey\\/a\\u00ADbc+def",
        "12345%E2%80%8B%24Secret%c2%adKey%2Fab%EF%BB%BFc",
        "12345&zwj;&dollar;Sec&#x200B;ret&NoBreak;Key&sol;a&shy;b&shyc",
    ] {
        assert_eq!(blank(key, &format!("[{text}]")), "[***]", "{text}");
    }
    // Not a key character: eleven of them with invisible ones between
    // is not enough, and one before or after the run stays.
    let eleven: String = key[..11].chars().flat_map(|c| [c, '\u{200b}']).collect();
    assert_eq!(blank(key, &eleven), eleven);
    assert_eq!(
        blank(key, &format!("\u{200b}{}", &key[..12])),
        "\u{200b}***"
    );
    // Other characters outside ASCII break a run.
    let broken = format!("{}\u{2011}{}", &key[..8], &key[8..16]);
    assert_eq!(blank(key, &broken), broken);
}

#[test]
fn the_blanker_never_prints_the_key() {
    assert!(!format!("{:?}", Blanker::new("s3cret-key")).contains("s3cret"));
}

/// The encodings a server may echo the key in, as the test spells them.
#[test]
fn a_run_is_found_exactly_when_the_key_has_it() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 3000,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    // Few letters, so that runs repeat and texts share many of them
    // with the key; no character that starts an escape or base64.
    let strategy = ("[abc]{1,40}", "[abcA.]{0,60}");
    runner
        .run(&strategy, |(key, text)| {
            let needed = key.len().min(MIN_RUN);
            let folded = text.to_lowercase();
            let has_run = (0..=folded.len().saturating_sub(needed))
                .any(|at| at + needed <= folded.len() && key.contains(&folded[at..at + needed]));
            let blanker = Blanker::new(&key);
            prop_assert_eq!(blanker.finds_in(&text), has_run, "{:?} in {:?}", key, text);
            // What is left holds no run.
            let blanked = blanker.blank(Cow::Borrowed(&text)).to_lowercase();
            for piece in blanked.split(BLANK) {
                for at in 0..=piece.len().saturating_sub(needed) {
                    if at + needed <= piece.len() {
                        prop_assert!(
                            !key.contains(&piece[at..at + needed]),
                            "{:?} left in {:?}",
                            &piece[at..at + needed],
                            blanked
                        );
                    }
                }
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn a_large_text_without_the_key_is_left_as_it_is() {
    // A list of users: words, addresses, ids, a hash that is base64.
    let row = r#"{"id":1234567,"email":"jane.doe+iam@example.com","name":"Jane Doe","token":"Zm9vYmFyYmF6cXV4cXV1eA==","path":"\/users\/1234567"},"#;
    let text = row.repeat((1 << 20) / row.len());
    let blanker = Blanker::new("kS9d-2fLq_7ZxP0vRt3Wm8YhN4cJ6bGe");
    assert!(matches!(
        blanker.blank(Cow::Borrowed(&text)),
        Cow::Borrowed(_)
    ));
}

#[test]
#[ignore = "a measure, not a check: cargo test --lib secret -- --ignored --nocapture"]
fn time_four_mebibytes_without_the_key() {
    // JSON, and HTML with references and punctuation outside ASCII.
    let json = r#"{"id":1234567,"email":"jane.doe+iam@example.com","name":"Jane Doe","token":"Zm9vYmFyYmF6cXV4cXV1eA==","path":"\/users\/1234567"},"#;
    let html = "<tr><td>jane.doe&#43;iam@example.com</td><td>Jane&nbsp;Doe &amp; co \u{201c}quoted\u{201d} \u{2014} 12&#x2F;05 &lt;b&gt;</td></tr>\n";
    let long_key: String = (0..4096u32)
        .map(|i| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[(i * 7919 % 36) as usize]))
        .collect();
    for (kind, row) in [("JSON", json), ("HTML", html)] {
        let text = row.repeat((4 << 20) / row.len() + 1);
        for key in ["kS9d-2fLq_7ZxP0vRt3Wm8YhN4cJ6bGe", long_key.as_str()] {
            let blanker = Blanker::new(key);
            let started = std::time::Instant::now();
            let blanked = blanker.blank(Cow::Borrowed(&text));
            println!(
                "{:.2} MiB of {kind}, key of {} bytes: {:?}",
                text.len() as f64 / f64::from(1 << 20),
                key.len(),
                started.elapsed(),
            );
            assert!(matches!(blanked, Cow::Borrowed(_)));
        }
    }
}
