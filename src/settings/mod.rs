//! Checked settings: the only code that reads flags, the environment and
//! the key file. `cli` holds what was typed; this module turns it into real
//! types once (a delimiter byte, an encoding, a results target, a redacted
//! key, the send policy), and refuses what cannot work with a message that
//! says what to type instead.

mod api;
mod input;
mod network;
mod output;
mod sandbox;
mod sending;

pub use api::*;
pub use input::*;
pub use network::*;
pub use output::*;
pub(crate) use sandbox::*;
pub(crate) use sending::*;

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    use reqwest::Url;

    use crate::cli::{ApiArgs, RunArgs};
    use crate::policy::MAX_WINDOW;
    use crate::profile::{ChosenBy, DEFAULT_KEY_COMMAND_TIMEOUT, KeyFrom, Profile};

    #[test]
    fn delimiters() {
        for (text, want) in [
            (",", b','),
            (";", b';'),
            ("tab", b'\t'),
            ("\\t", b'\t'),
            ("|", b'|'),
        ] {
            assert_eq!(parse_delimiter(text).unwrap(), want, "{text}");
        }
        let error = parse_delimiter("::").unwrap_err().to_string();
        assert!(error.contains("use one of"), "{error}");
    }

    #[test]
    fn encodings() {
        assert_eq!(parse_encoding("UTF-8").unwrap(), None);
        assert_eq!(
            parse_encoding("cp1252").unwrap(),
            Some(encoding_rs::WINDOWS_1252)
        );
        assert_eq!(
            parse_encoding("latin1").unwrap(),
            Some(encoding_rs::WINDOWS_1252)
        );
        assert!(
            parse_encoding("klingon")
                .unwrap_err()
                .to_string()
                .contains("windows-1252")
        );
    }

    #[test]
    fn default_output_is_named_after_the_input_in_the_current_directory() {
        let input = InputSource::File(PathBuf::from("/data/batch.csv"));
        assert_eq!(
            default_output(&input, ".results.csv"),
            PathBuf::from("batch.results.csv")
        );
        assert_eq!(
            default_output(&InputSource::Stdin, ".results.csv"),
            PathBuf::from("stdin.results.csv")
        );
        assert_eq!(
            default_output(&input, REHEARSAL_SUFFIX),
            PathBuf::from("batch.rehearsal.csv")
        );
    }

    #[test]
    fn a_named_pipe_as_the_key_file_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("key.fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|status| status.success()) {
            return; // no mkfifo here: nothing to test
        }
        let error = read_key_file(&fifo).unwrap_err().to_string();
        assert!(error.contains("not a regular file"), "{error}");
        let input = InputSource::File(dir.path().join("in.csv"));
        let output = OutputTarget::File(dir.path().join("out.csv"));
        let summary = check_summary_path(&fifo, (&input, &output), false)
            .unwrap_err()
            .to_string();
        assert!(summary.contains("is a named pipe"), "{summary}");
        let undo = check_undo_path(&fifo, (&input, &output, None), false)
            .unwrap_err()
            .to_string();
        assert!(undo.contains("is a named pipe"), "{undo}");
    }

    fn api_args(base_url: Option<&str>, key_file: Option<PathBuf>) -> ApiArgs {
        ApiArgs {
            profile: None,
            api_key_file: key_file,
            base_url: base_url.map(str::to_string),
            timeout: 30.0,
            allow_insecure_http: false,
            ca_cert: Vec::new(),
            proxy: None,
            no_proxy: false,
        }
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn the_key_comes_from_the_environment_or_a_file_and_never_prints() {
        let config =
            ApiSettings::from_args(&api_args(None, None), env_of(&[(API_KEY_ENV, "s3cret\n")]))
                .unwrap();
        assert_eq!(config.api_key.expose(), "s3cret");
        assert_eq!(config.base_url.as_str(), "https://api.gcore.com/");
        assert!(!format!("{config:?}").contains("s3cret"));
        assert_eq!(config.api_key.to_string(), "***");

        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, b"from-file\n").unwrap();
        let config = ApiSettings::from_args(
            &api_args(None, Some(file.path().to_path_buf())),
            env_of(&[(API_KEY_ENV, "from-env")]),
        )
        .unwrap();
        assert_eq!(config.api_key.expose(), "from-file");
    }

    #[test]
    fn key_files_as_editors_save_them_and_files_that_are_not_key_files() {
        let dir = tempfile::tempdir().unwrap();
        let notepad = dir.path().join("notepad.txt");
        std::fs::write(&notepad, b"\xEF\xBB\xBFs3cret-key\r\n").unwrap();
        let config = ApiSettings::from_args(&api_args(None, Some(notepad)), env_of(&[])).unwrap();
        assert_eq!(config.api_key.expose(), "s3cret-key");

        let big = dir.path().join("big.txt");
        std::fs::write(&big, "k".repeat(5000)).unwrap();
        let cases = [
            (big, "more than 4096 bytes"),
            (PathBuf::from("/dev/zero"), "not a regular file"),
            (dir.path().to_path_buf(), "not a regular file"),
        ];
        for (path, want) in cases {
            let error = ApiSettings::from_args(&api_args(None, Some(path.clone())), env_of(&[]))
                .unwrap_err();
            let text = crate::error::error_chain(&error);
            assert!(text.contains(want), "{}: {text}", path.display());
        }
    }

    #[test]
    fn an_explicit_profile_beats_the_environment_and_gcore_profile_does_not() {
        let profile = |chosen_by, base: Option<&str>, key: bool| Profile {
            name: "b".to_string(),
            chosen_by,
            file: PathBuf::from("/c/config.toml"),
            base_url: base.map(str::to_string),
            key: key.then(|| KeyFrom::File(PathBuf::from("/c/b.key"))),
            rate: None,
            burst: None,
            concurrency: None,
            key_command_timeout: DEFAULT_KEY_COMMAND_TIMEOUT,
        };
        let env = env_of(&[(API_KEY_ENV, "a-key"), (BASE_URL_ENV, "https://a.example")]);
        let args = api_args(None, None);
        let b_file = KeyChoice::Profile {
            name: "b".to_string(),
            key: KeyFrom::File(PathBuf::from("/c/b.key")),
        };
        // --profile b: b's host and key, the environment's set aside.
        let flag = profile(ChosenBy::Flag, Some("https://b.example"), true);
        let got = resolve(&args, Some(&flag), &env);
        assert_eq!(
            (got.base_url.as_str(), &got.key),
            ("https://b.example", &b_file)
        );
        assert_eq!(got.set_aside, [BASE_URL_ENV, API_KEY_ENV]);
        // A profile without a base URL does not take the environment's.
        let flag = profile(ChosenBy::Flag, None, true);
        assert_eq!(resolve(&args, Some(&flag), &env).base_url, DEFAULT_BASE_URL);
        // Nor its key.
        let keyless = profile(ChosenBy::Flag, Some("https://b.example"), false);
        let got = resolve(&args, Some(&keyless), &env);
        assert_eq!(got.key, KeyChoice::Missing(Some("b".to_string())));
        // GCORE_PROFILE=b: the environment's credentials win.
        let implicit = profile(ChosenBy::Environment, Some("https://b.example"), true);
        let got = resolve(&args, Some(&implicit), &env);
        assert_eq!(
            (got.base_url.as_str(), &got.key),
            ("https://a.example", &KeyChoice::Environment)
        );
        assert!(got.set_aside.is_empty());
        let got = resolve(&args, Some(&implicit), &env_of(&[]));
        assert_eq!(
            (got.base_url.as_str(), &got.key),
            ("https://b.example", &b_file)
        );
        // Flags beat everything.
        let flags = api_args(Some("https://f.example"), Some(PathBuf::from("/f.key")));
        let flag = profile(ChosenBy::Flag, Some("https://b.example"), true);
        let got = resolve(&flags, Some(&flag), &env);
        assert_eq!(got.base_url, "https://f.example");
        assert_eq!(got.key, KeyChoice::FlagFile(PathBuf::from("/f.key")));
        assert_eq!(got.base_from, "--base-url");
    }

    #[test]
    fn a_missing_or_empty_key_says_how_to_set_it() {
        let error = ApiSettings::from_args(&api_args(None, None), env_of(&[])).unwrap_err();
        assert!(error.to_string().contains(API_KEY_ENV), "{error}");
        assert!(error.to_string().contains("--api-key-file"), "{error}");
        let error = ApiSettings::from_args(&api_args(None, None), env_of(&[(API_KEY_ENV, " \n")]))
            .unwrap_err();
        assert!(error.to_string().contains("is empty"), "{error}");
    }

    #[test]
    fn base_urls() {
        let key = [(API_KEY_ENV, "k")];
        let from_env = ApiSettings::from_args(
            &api_args(None, None),
            env_of(&[(API_KEY_ENV, "k"), (BASE_URL_ENV, "http://127.0.0.1:9/")]),
        )
        .unwrap();
        assert_eq!(from_env.base_url.as_str(), "http://127.0.0.1:9/");
        let flag_wins = ApiSettings::from_args(
            &api_args(Some("https://example.test/api"), None),
            env_of(&[(API_KEY_ENV, "k"), (BASE_URL_ENV, "http://127.0.0.1:9/")]),
        )
        .unwrap();
        assert_eq!(flag_wins.base_url.as_str(), "https://example.test/api");
        for bad in [
            "api.gcore.com",
            "ftp://x",
            "https://",
            "https://u:p@x",
            "https://x/?q=1",
        ] {
            let error =
                ApiSettings::from_args(&api_args(Some(bad), None), env_of(&key)).unwrap_err();
            assert!(error.to_string().contains("base URL"), "{bad}: {error}");
        }
        // A key pasted as the URL's user name (or password) is never echoed,
        // whether the URL parses or not.
        for bad in [
            "https://SECRETKEY@api.gcore.com",
            "http://SECRETKEY@127.0.0.1:1",
            "https://SECRETKEY:SECRETKEY@api.gcore.com",
            "https://SECRETKEY@exa mple.com",
        ] {
            let error =
                ApiSettings::from_args(&api_args(Some(bad), None), env_of(&key)).unwrap_err();
            let text = error.to_string();
            assert!(!text.contains("SECRETKEY"), "{bad}: {text}");
            assert!(text.contains("***@"), "{bad}: {text}");
        }
    }

    #[test]
    fn the_proxy_comes_from_the_flag_then_the_environment_unless_no_proxy_names_the_host() {
        let https = Url::parse("https://api.gcore.com").unwrap();
        let http = Url::parse("http://127.0.0.1:8080").unwrap();
        let local = Url::parse("https://127.0.0.1:8443").unwrap();
        let v6 = Url::parse("https://[::1]:8443").unwrap();
        let choose = |flag: Option<&str>, base: &Url, pairs: &[(&str, &str)]| {
            let env = env_of(pairs);
            choose_proxy(flag, base, Some(&env)).map(|route| route.map(|r| r.to_string()))
        };
        type Case<'a> = (
            Option<&'a str>,
            &'a Url,
            &'a [(&'a str, &'a str)],
            Option<&'a str>,
        );
        let cases: &[Case] = &[
            (None, &https, &[], None),
            (
                None,
                &https,
                &[("HTTPS_PROXY", "http://p:3128")],
                Some("http://p:3128 (from HTTPS_PROXY)"),
            ),
            (
                None,
                &https,
                &[("https_proxy", "p:3128")],
                Some("http://p:3128 (from https_proxy)"),
            ),
            // HTTP_PROXY is for http:// base URLs only.
            (None, &https, &[("HTTP_PROXY", "http://p:3128")], None),
            (
                None,
                &http,
                &[("HTTP_PROXY", "http://127.0.0.1:3128")],
                Some("http://127.0.0.1:3128 (from HTTP_PROXY)"),
            ),
            (
                None,
                &https,
                &[
                    ("ALL_PROXY", "http://all:1"),
                    ("HTTPS_PROXY", "http://one:2"),
                ],
                Some("http://one:2 (from HTTPS_PROXY)"),
            ),
            (
                None,
                &https,
                &[("HTTPS_PROXY", " "), ("all_proxy", "http://all:1")],
                Some("http://all:1 (from all_proxy)"),
            ),
            (
                None,
                &https,
                &[("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", "gcore.com")],
                None,
            ),
            (
                None,
                &https,
                &[
                    ("HTTPS_PROXY", "http://p:1"),
                    ("no_proxy", ".gcore.com, 10.0.0.0/8"),
                ],
                None,
            ),
            (
                None,
                &https,
                &[("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", "*")],
                None,
            ),
            (
                None,
                &https,
                &[
                    ("HTTPS_PROXY", "http://p:1"),
                    ("NO_PROXY", "notgcore.com,example.com"),
                ],
                Some("http://p:1 (from HTTPS_PROXY)"),
            ),
            (
                Some("http://u:pw@flag:8080"),
                &https,
                &[("HTTPS_PROXY", "http://p:1")],
                Some("http://u:***@flag:8080 (from --proxy)"),
            ),
            // NO_PROXY as people write it: `*` for addresses too, ports,
            // brackets, `*.domain`.
            (
                None,
                &local,
                &[("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", "*")],
                None,
            ),
            (
                None,
                &local,
                &[
                    ("HTTPS_PROXY", "http://p:1"),
                    ("NO_PROXY", "example.com, 127.0.0.1:8443"),
                ],
                None,
            ),
            (
                None,
                &https,
                &[("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", "*.gcore.com")],
                None,
            ),
            (
                None,
                &v6,
                &[("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", "[::1]:8443")],
                None,
            ),
        ];
        for (flag, base, env, want) in cases {
            let got = choose(*flag, base, env).unwrap();
            assert_eq!(got.as_deref(), *want, "{flag:?} {base} {env:?}");
        }
        // An in-process sandbox takes no proxy from the environment.
        assert_eq!(choose_proxy(None, &https, None).unwrap(), None);
    }

    #[test]
    fn proxy_urls_that_cannot_work_are_refused_without_showing_a_password() {
        let cases = [
            ("socks5://u:hunter2@p:1080", "SOCKS"),
            ("ftp://p:21", "must start with http://"),
            ("http://u:hunter2@", "empty host"),
            ("http://u:hunter2@p:99999", "is not a URL"),
            ("http://", "is not a URL"),
            // `user:password` without `@host` reads as a host and a bad port.
            ("u:hunter2", "is not a URL"),
            // A key pasted as the proxy, which no URL parser takes: not shown.
            ("hunter2$%&", "is not a URL"),
        ];
        for (text, want) in cases {
            let error = parse_proxy(text, "HTTPS_PROXY").unwrap_err().to_string();
            assert!(error.contains(want), "{text}: {error}");
            assert!(error.contains("HTTPS_PROXY"), "{text}: {error}");
            assert!(!error.contains("hunter2"), "{text}: {error}");
        }
        let route = parse_proxy("http://user:p%40ss%3Aword@p:1", "--proxy").unwrap();
        assert_eq!(route.secrets(), ["p%40ss%3Aword", "p@ss:word"]);
        assert!(!format!("{route:?}").contains("ss"));
    }

    #[test]
    fn plain_http_through_a_proxy_on_another_machine_is_refused() {
        let base = Url::parse("http://127.0.0.1:8080").unwrap();
        let far = parse_proxy("http://u:pw@proxy.example:3128", "HTTP_PROXY").unwrap();
        let near = parse_proxy("http://127.0.0.1:3128", "HTTP_PROXY").unwrap();
        let error = refuse_plain_http(&base, Some(&far), false)
            .unwrap_err()
            .to_string();
        assert!(error.contains("NO_PROXY"), "{error}");
        assert!(!error.contains("pw@"), "{error}");
        assert!(refuse_plain_http(&base, Some(&near), false).is_ok());
        assert!(refuse_plain_http(&base, Some(&far), true).is_ok());
        let https = Url::parse("https://api.gcore.com").unwrap();
        assert!(refuse_plain_http(&https, Some(&far), false).is_ok());
    }

    #[test]
    fn a_trust_store_variable_that_names_nothing_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ca.pem");
        let ca = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        std::fs::write(&file, ca.cert.pem()).unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "x").unwrap();
        let der = dir.path().join("ca.der");
        std::fs::write(&der, ca.cert.der()).unwrap();
        let (file, folder) = (file.to_str().unwrap(), dir.path().to_str().unwrap());
        let (junk, der) = (junk.to_str().unwrap(), der.to_str().unwrap());
        assert!(check_trust_store_env(&env_of(&[("SSL_CERT_FILE", file)])).is_ok());
        assert!(check_trust_store_env(&env_of(&[("SSL_CERT_DIR", folder)])).is_ok());
        let cases = [
            ("SSL_CERT_FILE", "/nonexistent/ca.pem", "cannot be read"),
            ("SSL_CERT_FILE", folder, "is not a file"),
            ("SSL_CERT_DIR", file, "is not a folder"),
            ("SSL_CERT_FILE", junk, "holds no certificate"),
            ("SSL_CERT_FILE", der, "DER"),
        ];
        for (name, value, want) in cases {
            let error = check_trust_store_env(&env_of(&[(name, value)]))
                .unwrap_err()
                .to_string();
            assert!(error.contains(want) && error.contains(name), "{error}");
        }
    }

    #[test]
    fn ca_files_are_read_as_pem_with_any_line_ends() {
        let tls = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let pem = tls.cert.pem();
        let two = format!("{pem}{pem}");
        assert_eq!(parse_ca_pem(two.as_bytes()).unwrap().len(), 2);
        let windows = format!("\u{feff}{}", pem.replace('\n', "\r\n"));
        assert_eq!(parse_ca_pem(windows.as_bytes()).unwrap().len(), 1);
        let error = parse_ca_pem(tls.signing_key.serialize_pem().as_bytes()).unwrap_err();
        assert!(error.contains("private key"), "{error}");
        let error = parse_ca_pem(tls.cert.der()).unwrap_err();
        assert!(error.contains("DER"), "{error}");
        let cut = &pem[..pem.len() / 2];
        let error = parse_ca_pem(cut.as_bytes()).unwrap_err();
        assert!(error.contains("cut short"), "{error}");
        let damaged = pem.replacen("MII", "M!I", 1);
        let error = parse_ca_pem(damaged.as_bytes()).unwrap_err();
        assert!(error.contains("damaged"), "{error}");
    }

    fn run_args() -> RunArgs {
        RunArgs {
            filled_from: Vec::new(),
            concurrency: None,
            rate: None,
            max_rate: None,
            burst: None,
            max_retries: 5,
            max_wait: 300.0,
            summary_json: None,
            metrics_file: None,
            verbose: false,
            window: None,
            forget_rate: false,
            no_share: false,
        }
    }

    #[test]
    fn run_settings_are_checked() {
        let config = RunSettings::from_args(&run_args()).unwrap();
        assert_eq!(config.send.concurrency.get(), 8);
        assert_eq!(config.send.window.get(), 300);
        let unlimited = RunSettings::from_args(&RunArgs {
            rate: Some("0".into()),
            ..run_args()
        })
        .unwrap();
        assert_eq!(unlimited.send.rate.per_second(), None);
        assert_eq!(unlimited.send.window.get(), MAX_WINDOW);
        let auto = RunSettings::from_args(&RunArgs {
            rate: Some("auto".into()),
            max_rate: Some(200.0),
            ..run_args()
        })
        .unwrap();
        assert!(auto.send.rate.is_auto());
        assert_eq!(auto.send.rate.per_second(), Some(200.0));
        for bad in [
            RunArgs {
                concurrency: Some(0),
                ..run_args()
            },
            RunArgs {
                rate: Some("-1".into()),
                ..run_args()
            },
            RunArgs {
                rate: Some("NaN".into()),
                ..run_args()
            },
            RunArgs {
                rate: Some("fast".into()),
                ..run_args()
            },
            RunArgs {
                max_rate: Some(50.0),
                ..run_args()
            },
            RunArgs {
                rate: Some("auto".into()),
                max_rate: Some(0.0),
                ..run_args()
            },
            RunArgs {
                burst: Some(0),
                ..run_args()
            },
            RunArgs {
                max_wait: 0.0,
                ..run_args()
            },
            RunArgs {
                window: Some(0),
                ..run_args()
            },
        ] {
            assert!(RunSettings::from_args(&bad).is_err(), "{bad:?}");
        }
    }
}
