//! The layout holds: dependencies between the crate's modules point one way
//! (no two modules import each other, directly or around a loop), between
//! the top-level modules and between the modules of one folder
//! (`table::input`, `table::sheet`); the core never imports the settings or
//! the flags; and the pure parts stay pure. Read from the source, so a new
//! `use crate::...` or `use super::...` that breaks a rule fails here with
//! the loop it makes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module -> the modules it names.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// A source file: the module it is (`src/table/input/tests.rs` is
/// `["table", "input", "tests"]`, `src/table/mod.rs` is `["table"]`) and
/// its text without whole-line comments (a doc link imports nothing).
struct Source {
    module: Vec<String>,
    code: String,
}

/// Every file of `src/` but `lib.rs` and `main.rs`.
fn sources() -> Vec<Source> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect(&src, &mut files);
    let mut sources = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap().with_extension("");
        let mut module: Vec<String> = relative
            .components()
            .map(|part| part.as_os_str().to_string_lossy().into_owned())
            .collect();
        if module.last().is_some_and(|last| last == "mod") {
            module.pop();
        }
        if module == ["lib"] || module == ["main"] {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        sources.push(Source { module, code });
    }
    sources
}

/// Top-level module -> the top-level modules it names as `crate::NAME`
/// (also inside `crate::{a, b::c}`).
fn imports() -> Graph {
    let mut graph = Graph::new();
    for source in sources() {
        let module = &source.module[0];
        let uses = graph.entry(module.clone()).or_default();
        for (from_crate, path) in named_paths(&source.code, &source.module) {
            if let Some(name) = path.first()
                && from_crate
                && name != "*"
                && name != module
            {
                uses.insert(name.clone());
            }
        }
    }
    graph
}

/// Module of a folder -> the modules of the same folder it names, as
/// `crate::table::sheet::...`, `super::sheet::...`, or as an item that the
/// folder's `mod.rs` re-exports (`super::Summary`, defined in
/// `sink::summary`): `"table::input" -> {"table::sheet", ...}`. A glob
/// (`use super::*`) is not followed.
fn inner_imports() -> Graph {
    let sources = sources();
    // The modules of each folder, the items the folder's own file defines,
    // and which of its modules define each public item.
    let mut inner: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut own: BTreeSet<(&str, String)> = BTreeSet::new();
    let mut definers: BTreeMap<(&str, String), BTreeSet<&str>> = BTreeMap::new();
    for source in &sources {
        let top = source.module[0].as_str();
        match source.module.get(1) {
            Some(module) => {
                inner.insert((top, module));
                for name in defined(&source.code, true) {
                    definers.entry((top, name)).or_default().insert(module);
                }
            }
            None => own.extend(defined(&source.code, false).map(|name| (top, name))),
        }
    }
    let mut graph = Graph::new();
    for source in &sources {
        let [top, module, ..] = source.module.as_slice() else {
            continue;
        };
        let uses = graph.entry(format!("{top}::{module}")).or_default();
        for (_, path) in named_paths(&source.code, &source.module) {
            let [first, name, ..] = path.as_slice() else {
                continue;
            };
            if first != top {
                continue;
            }
            let key = (top.as_str(), name.clone());
            let target = if inner.contains(&(top.as_str(), name.as_str())) {
                Some(name.as_str())
            } else if own.contains(&key) {
                None
            } else {
                match definers.get(&key) {
                    Some(by) if by.len() == 1 => by.first().copied(),
                    _ => None,
                }
            };
            if let Some(target) = target
                && target != module
            {
                uses.insert(format!("{top}::{target}"));
            }
        }
    }
    graph
}

/// The items a file defines at its top level (`fn`, `struct`, `enum`,
/// `const`, `static`, `type`, `trait`, `mod`, at the start of a line):
/// only the `pub` ones (`pub(super)` too) if `public`.
fn defined(code: &str, public: bool) -> impl Iterator<Item = String> + '_ {
    code.lines().filter_map(move |line| {
        if line.starts_with(char::is_whitespace) {
            return None;
        }
        let mut words = line.split_whitespace().peekable();
        let visible = words.next_if(|word| word.starts_with("pub")).is_some();
        if public && !visible {
            return None;
        }
        while words
            .next_if(|word| ["async", "unsafe", "extern"].contains(word))
            .is_some()
        {}
        let mut kind = words.next()?;
        if kind == "const" && words.peek() == Some(&"fn") {
            kind = words.next()?;
        }
        let kinds = [
            "fn", "struct", "enum", "const", "static", "type", "trait", "mod",
        ];
        if !kinds.contains(&kind) {
            return None;
        }
        let name: String = words.next()?.chars().take_while(is_name).collect();
        (!name.is_empty()).then_some(name)
    })
}

fn is_name(c: &char) -> bool {
    c.is_alphanumeric() || *c == '_'
}

/// The paths `code` names from `crate::` or `super::`, made absolute for a
/// file that is `module` (`super::sheet` in `table::input` is
/// `["table", "sheet"]`), each with whether it was named from `crate::`.
/// `super::` in an inline `mod tests` is read as if in the file itself.
fn named_paths(code: &str, module: &[String]) -> Vec<(bool, Vec<String>)> {
    let mut found = Vec::new();
    for keyword in ["crate::", "super::"] {
        for (at, _) in code.match_indices(keyword) {
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| is_name(&c) || c == ':' || c == '$') {
                continue;
            }
            let mut paths = Vec::new();
            use_tree(code, at, Vec::new(), &mut paths);
            for path in paths {
                let from_crate = path[0] == "crate";
                let mut absolute = if from_crate {
                    Vec::new()
                } else {
                    module.to_vec()
                };
                let mut rest = path.iter().skip(usize::from(from_crate)).peekable();
                while rest.next_if(|part| *part == "super").is_some() {
                    absolute.pop();
                }
                absolute.extend(rest.filter(|part| *part != "self").cloned());
                found.push((from_crate, absolute));
            }
        }
    }
    found
}

/// The paths of the use tree (or plain path) that starts at `at`:
/// `a::b`, `a::{b, c::{d, e as f}}`, `a::*`; returns where it ends.
fn use_tree(code: &str, mut at: usize, mut path: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let bytes = code.as_bytes();
    let skip = |mut at: usize, over: &dyn Fn(u8) -> bool| {
        while bytes.get(at).is_some_and(|b| over(*b)) {
            at += 1;
        }
        at
    };
    loop {
        at = skip(at, &|b| b.is_ascii_whitespace());
        match bytes.get(at) {
            Some(b'{') => {
                at += 1;
                loop {
                    at = skip(at, &|b| b.is_ascii_whitespace() || b == b',');
                    match bytes.get(at) {
                        None => return at,
                        Some(b'}') => return at + 1,
                        Some(_) => {}
                    }
                    let start = at;
                    at = use_tree(code, at, path.clone(), out);
                    // `as name`, or whatever is not a path, up to the next one.
                    at = skip(at, &|b| b != b',' && b != b'}');
                    if at == start {
                        at += 1;
                    }
                }
            }
            Some(b'*') => {
                path.push("*".to_string());
                out.push(path);
                return at + 1;
            }
            _ => {
                let name: String = code[at..].chars().take_while(is_name).collect();
                if name.is_empty() {
                    if !path.is_empty() {
                        out.push(path);
                    }
                    return at;
                }
                at += name.len();
                path.push(name);
                if code[at..].starts_with("::") {
                    at += 2;
                } else {
                    out.push(path);
                    return at;
                }
            }
        }
    }
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
}

/// A loop of imports, if there is one: `[a, b, a]`.
fn find_loop(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|seen| seen == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn module_dependencies_point_one_way() {
    let graph = imports();
    assert!(graph.len() >= 10, "the modules were not found: {graph:?}");
    if let Some(found) = find_loop(&graph) {
        panic!("modules import each other: {}", found.join(" -> "));
    }
}

/// The engine owns its events; the sink reads them, never the reverse.
#[test]
fn the_engine_never_imports_the_sink() {
    let graph = imports();
    assert!(!graph["engine"].contains("sink"), "{:?}", graph["engine"]);
}

#[test]
fn the_pure_parts_import_only_what_they_are_allowed() {
    let graph = imports();
    let allowed: &[(&str, &[&str])] = &[
        // The API's types and rules: shared by the tool and the sandbox.
        ("model", &["visible"]),
        ("policy", &[]),
        ("exit", &[]),
        ("cli", &[]),
        ("sandbox", &["model"]),
        // Settings read flags, the environment and files, and build the
        // options the core owns (the table's input, the results target, the
        // HTTP client's configuration);
        // never the engine.
        (
            "settings",
            &[
                "cli",
                "environment",
                "error",
                "files",
                // The client's configuration (`http::ClientConfig`).
                "http",
                "model",
                "policy",
                "profile",
                "sandbox",
                "table",
            ],
        ),
        // Profiles: a config file read, nothing else of the tool (the
        // leaves that blank the key, escape text, name an exit and know
        // a file's folder, and `say!`, the line printer at the crate's root).
        (
            "profile",
            &["error", "exit", "files", "say", "secret", "visible"],
        ),
        ("secret", &["visible"]),
        ("visible", &[]),
        // Leaves: anything may import them.
        ("environment", &[]),
        ("files", &[]),
    ];
    for (module, may) in allowed {
        let uses = &graph[*module];
        let extra: Vec<&String> = uses
            .iter()
            .filter(|name| !may.contains(&name.as_str()))
            .collect();
        assert!(extra.is_empty(), "{module} imports {extra:?}");
    }
}

#[test]
fn a_loop_is_found_when_there_is_one() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    graph.insert("a".into(), ["b".to_string()].into());
    graph.insert("b".into(), ["c".to_string()].into());
    graph.insert("c".into(), ["a".to_string()].into());
    assert_eq!(find_loop(&graph).unwrap(), ["a", "b", "c", "a"]);
    graph.get_mut("c").unwrap().clear();
    assert_eq!(find_loop(&graph), None);
}

/// Above the core: the flags, the settings made of them, and the commands
/// that wire settings and core together (`lib` and `main` are not read).
const ABOVE_THE_CORE: &[&str] = &["cli", "commands", "settings"];

/// Core modules that still import `settings` or `cli`, for now: none. Each
/// would be a debt, and the test fails once it is paid, to have it taken
/// off here.
const STILL_IMPORTING_SETTINGS: &[&str] = &[];

/// The core owns its options (`table::input::InputSettings`,
/// `table::record::OutputTarget`); `settings` builds them from the flags.
#[test]
fn the_core_never_imports_the_settings_or_the_flags() {
    let graph = imports();
    assert!(
        ["table", "sink", "engine", "profile"]
            .iter()
            .all(|module| graph.contains_key(*module)),
        "the modules were not found: {graph:?}"
    );
    for (module, uses) in &graph {
        if ABOVE_THE_CORE.contains(&module.as_str()) {
            continue;
        }
        let above: Vec<&str> = ["settings", "cli"]
            .into_iter()
            .filter(|name| uses.contains(*name))
            .collect();
        if STILL_IMPORTING_SETTINGS.contains(&module.as_str()) {
            assert!(
                !above.is_empty(),
                "{module} imports neither settings nor cli any more: take it off \
                 STILL_IMPORTING_SETTINGS"
            );
        } else {
            assert!(
                above.is_empty(),
                "{module}, a core module, imports {above:?}: the core owns its options, and \
                 settings build them"
            );
        }
    }
}

/// Loops inside a folder let stand for now, each an import `from -> to`
/// taken out of the graph before loops are looked for: none. Each would
/// be a debt, and the test fails once it is paid, to have it taken off here.
const INNER_LOOPS_LET_STAND: &[(&str, &str)] = &[];

#[test]
fn the_modules_of_a_folder_point_one_way() {
    let mut graph = inner_imports();
    // What the reading must see: `super::sheet` in `table::input`, and
    // `super::Summary` in `sink::report` (re-exported by `sink` from
    // `sink::summary`).
    for (from, to) in [
        ("table::input", "table::sheet"),
        ("sink::report", "sink::summary"),
    ] {
        assert!(
            graph.get(from).is_some_and(|uses| uses.contains(to)),
            "{from} -> {to} was not found: {graph:?}"
        );
    }
    for (from, to) in INNER_LOOPS_LET_STAND {
        let taken = graph.get_mut(*from).is_some_and(|uses| uses.remove(*to));
        assert!(
            taken,
            "{from} no longer imports {to}: take it off INNER_LOOPS_LET_STAND"
        );
    }
    if let Some(found) = find_loop(&graph) {
        panic!(
            "modules of a folder import each other: {}",
            found.join(" -> ")
        );
    }
}

#[test]
fn paths_are_read_through_groups_and_super() {
    let module = ["table".to_string(), "input".to_string()];
    let code = "use super::sheet::{self, Stored};\n\
                use crate::{error::Fatal, model::{api, patch::Field as F}};\n\
                let spool = crate::table::spool::Spool::new(super::super::exit::Exit::Ok);\n\
                use std::io::{self, Read};";
    let paths: Vec<(bool, String)> = named_paths(code, &module)
        .into_iter()
        .map(|(from_crate, path)| (from_crate, path.join("::")))
        .collect();
    let want = [
        (true, "error::Fatal"),
        (true, "model::api"),
        (true, "model::patch::Field"),
        (true, "table::spool::Spool::new"),
        (false, "table::sheet"),
        (false, "table::sheet::Stored"),
        (false, "exit::Exit::Ok"),
    ];
    let want: Vec<(bool, String)> = want
        .into_iter()
        .map(|(from_crate, path)| (from_crate, path.to_string()))
        .collect();
    assert_eq!(paths, want);
    let defined: Vec<String> = defined(
        "pub fn a() {}\npub(super) const B: u8 = 1;\nfn c() {}\n    pub fn d() {}\n\
         pub const fn e() {}\npub use f::G;\npub struct H<T>(T);",
        true,
    )
    .collect();
    assert_eq!(defined, ["a", "B", "e", "H"]);
}

/// Files are cut by what they do before they grow into rooms: no source
/// file is over 600 lines (tests beside the code included).
#[test]
fn no_source_file_is_over_600_lines() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect(&src, &mut files);
    assert!(files.len() > 20, "the sources were not found: {files:?}");
    let long: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let lines = std::fs::read_to_string(file).unwrap().lines().count();
            (lines > 600).then(|| format!("{} ({lines} lines)", file.display()))
        })
        .collect();
    assert!(long.is_empty(), "cut by what they do: {long:?}");
}
