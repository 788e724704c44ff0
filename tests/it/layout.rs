//! The layout holds: dependencies between the crate's modules point one way
//! (no two modules import each other, directly or around a loop), and the
//! pure parts stay pure. Read from the source, so a new `use crate::...` that
//! breaks the rule fails here with the loop it makes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level module -> the top-level modules it names as `crate::NAME`.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.components().next().unwrap();
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let uses = graph.entry(module.clone()).or_default();
        for (at, _) in text.match_indices("crate::") {
            let name: String = text[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != module {
                uses.insert(name);
            }
        }
    }
    graph
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
        // Settings read flags, the environment and files; never the engine.
        (
            "settings",
            &["cli", "error", "model", "policy", "profile", "sandbox"],
        ),
        // Profiles: a config file read, nothing else of the tool (the
        // leaves that blank the key, escape text and name an exit, and
        // `say!`, the line printer at the crate's root).
        ("profile", &["error", "exit", "say", "secret", "visible"]),
        ("secret", &["visible"]),
        ("visible", &[]),
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
