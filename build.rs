//! Lists the commands for `src/commands/mod.rs`: each `mod name;` line of
//! its block "The commands, one module each" is a command, the variant
//! `Name(name::Args)` of clap's `Command`. Adding a command is its file and
//! its `mod` line there; nothing else lists the commands.

use std::fmt::Write as _;

const MODULES: &str = "src/commands/mod.rs";
const MARK: &str = "// The commands, one module each";

fn main() {
    println!("cargo::rerun-if-changed={MODULES}");
    let text = std::fs::read_to_string(MODULES).expect("src/commands/mod.rs is readable");
    let block = text
        .split_once(MARK)
        .unwrap_or_else(|| panic!("{MODULES} has no line starting with {MARK:?}"))
        .1;
    let mut listed = String::from("commands! {\n");
    let modules = block
        .lines()
        .skip(1)
        .skip_while(|line| line.starts_with("//"))
        .take_while(|line| !line.trim().is_empty());
    let mut count = 0;
    for line in modules {
        let name = line
            .strip_prefix("mod ")
            .and_then(|rest| rest.strip_suffix(';'))
            .filter(|name| {
                name.chars().all(|c| c.is_ascii_lowercase() || c == '_') && !name.starts_with('_')
            })
            .unwrap_or_else(|| {
                panic!("{MODULES}: {line:?} in the commands' block is not `mod name;`")
            });
        let variant: String = name
            .split('_')
            .map(|word| {
                let mut chars = word.chars();
                chars.next().map_or(String::new(), |first| {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                })
            })
            .collect();
        writeln!(listed, "    {variant}({name}::Args),").expect("writing to a String");
        count += 1;
    }
    assert!(count > 0, "{MODULES}: no `mod name;` line after {MARK:?}");
    listed.push_str("}\n");
    let out = std::path::Path::new(&std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("commands.rs");
    std::fs::write(out, listed).expect("OUT_DIR is writable");
}
