//! The crate's module graph, read from the sources: no module depends on itself through
//! others, the engine depends on nothing outside it (it is the pure core), and the module map
//! in the README is the graph the code has.
//!
//! A module's dependencies are the `crate::...` paths its non-test code names (in `use`
//! declarations, braced groups included, and inline paths), resolved to the longest module
//! prefix. Test modules (`#[cfg(test)]` to the end of the file, where this crate keeps them)
//! are left out: tests may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

fn module_name(path: &Path) -> String {
    let rel = path.strip_prefix("src").unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts.join("::")
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its test module and comments.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Every path named after `crate::`, braced groups expanded one level per brace.
fn named_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        let end = after
            .find(|c: char| !is_path_char(c))
            .unwrap_or(after.len());
        let path = after[..end].trim_end_matches(':').to_string();
        if after[end..].starts_with('{') && after[..end].ends_with("::") {
            // `crate::a::b::{c, d::e, self}`: each item below the prefix.
            let close = matching_brace(&after[end..]);
            for item in split_top_level(&after[end + 1..end + close]) {
                let item = item.trim();
                let head: String = item.chars().take_while(|c| is_path_char(*c)).collect();
                let head = head.trim_end_matches(':');
                if head.is_empty() || head == "self" {
                    out.push(path.clone());
                } else {
                    out.push(format!("{path}::{head}"));
                }
            }
        } else {
            out.push(path);
        }
        rest = &after[end..];
    }
    out
}

fn matching_brace(s: &str) -> usize {
    let mut depth = 0;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    s.len()
}

fn split_top_level(s: &str) -> Vec<&str> {
    let (mut depth, mut start, mut out) = (0, 0, Vec::new());
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn graph() -> Graph {
    let mut files = Vec::new();
    sources(Path::new("src"), &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_name(f)).collect();
    let mut graph = Graph::new();
    for file in &files {
        let me = module_name(file);
        if me.is_empty() {
            continue; // lib.rs / main.rs: the roots
        }
        let text = std::fs::read_to_string(file).unwrap();
        let deps = graph.entry(me.clone()).or_default();
        for path in named_paths(&code(&text)) {
            let segments: Vec<&str> = path.split("::").collect();
            let target = (1..=segments.len())
                .rev()
                .map(|k| segments[..k].join("::"))
                .find(|m| modules.contains(m));
            if let Some(target) = target
                && target != me
                && !me.starts_with(&format!("{target}::"))
            {
                deps.insert(target);
            }
        }
    }
    graph
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        let graph = s.graph;
        for w in graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !state.index.contains_key(v.as_str()) {
            visit(&mut state, v);
        }
    }
    state.out
}

fn top(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
}

fn top_level(graph: &Graph) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, deps) in graph {
        let entry = out.entry(top(from).to_string()).or_default();
        for to in deps {
            if top(to) != top(from) {
                entry.insert(top(to).to_string());
            }
        }
    }
    out
}

#[test]
fn the_parser_of_paths_reads_braced_groups() {
    let paths = named_paths(
        "use crate::engine::{argv::{self, X}, script::Dialect};\nlet x = crate::images::reference::parse(y);",
    );
    assert_eq!(
        paths,
        [
            "engine::argv",
            "engine::script::Dialect",
            "images::reference::parse"
        ]
    );
}

#[test]
fn no_module_depends_on_itself_through_others() {
    let graph = graph();
    assert!(graph.len() > 50, "the sources were not found");
    let cycles = cycles(&graph);
    let shown: Vec<String> = cycles
        .iter()
        .map(|c| {
            let edges: Vec<String> = c
                .iter()
                .flat_map(|a| {
                    graph[a]
                        .iter()
                        .filter(|b| c.contains(b))
                        .map(move |b| format!("{a} -> {b}"))
                })
                .collect();
            edges.join(", ")
        })
        .collect();
    assert!(cycles.is_empty(), "module cycles:\n{}", shown.join("\n"));
    // The whole crate, modules inside each top-level module folded together.
    let tops: Graph = top_level(&graph);
    assert!(cycles_of(&tops).is_empty(), "top-level cycles: {tops:#?}");
}

fn cycles_of(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    cycles(graph)
}

#[test]
fn the_engine_depends_on_nothing_outside_it() {
    let graph = graph();
    let outside: Vec<String> = graph
        .iter()
        .filter(|(m, _)| top(m) == "engine")
        .flat_map(|(m, deps)| {
            deps.iter()
                .filter(|d| top(d) != "engine")
                .map(move |d| format!("{m} -> {d}"))
        })
        .collect();
    assert!(outside.is_empty(), "{outside:?}");
}

#[test]
fn the_readme_module_map_is_the_code_s() {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let marker = "<!-- module-map -->";
    let start = readme
        .find(marker)
        .expect("README.md has a module map between <!-- module-map --> markers")
        + marker.len();
    let end = readme.find("<!-- /module-map -->").unwrap();
    let mut written: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in readme[start..end].lines() {
        let Some((from, to)) = line.trim().split_once("->") else {
            continue;
        };
        let deps = to
            .split(',')
            .map(|d| d.trim().trim_matches('`').to_string())
            .filter(|d| !d.is_empty() && !d.starts_with('('))
            .collect();
        written.insert(from.trim().trim_matches('`').to_string(), deps);
    }
    let actual = top_level(&graph());
    let expected: Vec<String> = actual
        .iter()
        .map(|(m, deps)| {
            let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
            format!("{m:<8} -> {}", deps.join(", "))
        })
        .collect();
    assert_eq!(
        written,
        actual,
        "README.md's module map differs from the code; the code's is:\n{}",
        expected.join("\n")
    );
}
