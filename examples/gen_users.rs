//! Writes a large, realistic input file for benchmarks:
//! `cargo run --release --example gen_users -- ROWS [--lang-only] > users-1m.csv`.
//! Every row is valid; the mix of fields resembles a real migration. User IDs
//! run 1..=ROWS. With `--lang-only` the file has only `user_id,lang` (the
//! smallest body, `{"lang":"de"}`): a run then measures the client and the
//! HTTP round trip rather than the work the server does per field.

use std::io::{self, BufWriter, Write};

const FIRST: [&str; 8] = [
    "Anna", "Boris", "Chen", "Dmitri", "Elif", "Farid", "Greta", "Hugo",
];
const LAST: [&str; 8] = [
    "Schmidt", "Ivanov", "Wei", "Aliyev", "Yilmaz", "Rossi", "Jones", "Klein",
];
const LANGS: [&str; 5] = ["de", "en", "ru", "zh", "az"];
const GROUPS: [&str; 4] = ["Users", "Engineers", "Administrators", "Users;Engineers"];

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let lang_only = args.iter().any(|arg| arg == "--lang-only");
    let rows: u64 = args
        .iter()
        .find(|arg| !arg.starts_with("--"))
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(1_000_000);
    let mut out = BufWriter::new(io::stdout().lock());
    if lang_only {
        writeln!(out, "user_id,lang")?;
        for id in 1..=rows {
            writeln!(out, "{id},{}", LANGS[(id % 5) as usize])?;
        }
        return out.flush();
    }
    writeln!(
        out,
        "user_id,email,name,lang,phone,company,groups,auth_types"
    )?;
    for id in 1..=rows {
        let first = FIRST[(id % 8) as usize];
        let last = LAST[(id / 8 % 8) as usize];
        let lang = LANGS[(id % 5) as usize];
        let email = if id % 3 == 0 {
            format!(
                "{}.{}{id}@example.com",
                first.to_lowercase(),
                last.to_lowercase()
            )
        } else {
            String::new()
        };
        let phone = match id % 7 {
            0 => "#null".to_string(),
            1 => format!("+49 30 {:07}", id % 10_000_000),
            _ => String::new(),
        };
        let company = if id % 11 == 0 {
            "\"Example, Inc.\""
        } else {
            ""
        };
        let groups = GROUPS[(id % 4) as usize];
        let auth = if id % 2 == 0 {
            "password"
        } else {
            "password;sso"
        };
        writeln!(
            out,
            "{id},{email},{first} {last},{lang},{phone},{company},\"{groups}\",{auth}"
        )?;
    }
    out.flush()
}
