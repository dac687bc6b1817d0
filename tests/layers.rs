//! The architecture, checked: the crates depend one way (binary → core → kernels and vision)
//! and the core pulls in no terminal or command-line crate; inside every crate, the modules
//! that share a parent never import each other in a circle (production code: `#[cfg(test)]`
//! items may use what they test against); the two front ends (`cli`, `tui`) never import each
//! other and `options`, which they share, imports neither. See docs/architecture.md.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------- crates

/// Packages reachable from `name` through Cargo.lock's dependency lists (every feature and
/// target, dev-dependencies of workspace members excluded: a superset of `cargo tree -e normal`).
fn lock_closure(name: &str) -> BTreeSet<String> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).expect("Cargo.lock");
    let mut deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for block in lock.split("[[package]]").skip(1) {
        let mut pkg = None;
        let mut list = Vec::new();
        let mut in_deps = false;
        for line in block.lines() {
            let l = line.trim();
            if let Some(v) = l.strip_prefix("name = ") {
                pkg = Some(v.trim_matches('"').to_string());
            } else if l.starts_with("dependencies = [") {
                in_deps = true;
            } else if in_deps && l == "]" {
                in_deps = false;
            } else if in_deps {
                // "name", "name version" or "name version (source)"
                let d = l.trim_matches(|c| c == '"' || c == ',');
                list.push(d.split(' ').next().unwrap_or(d).to_string());
            }
        }
        if let Some(p) = pkg {
            deps.entry(p).or_default().extend(list);
        }
    }
    // Cargo.lock does not tell dev-dependencies apart: take the workspace member's normal
    // dependencies from its manifest, then follow the lock.
    let manifest = match name {
        "osteoai-core" => "crates/core/Cargo.toml",
        "osteoai-kernels" => "crates/kernels/Cargo.toml",
        _ => panic!("unknown member {name}"),
    };
    let mut todo = normal_dependencies(manifest);
    assert!(!todo.is_empty(), "no dependencies read from {manifest}");
    let mut seen = BTreeSet::new();
    while let Some(p) = todo.pop() {
        if seen.insert(p.clone()) {
            todo.extend(deps.get(&p).cloned().unwrap_or_default());
        }
    }
    seen
}

/// The names under `[dependencies]` of a member's manifest (`manifest` from the root).
fn normal_dependencies(manifest: &str) -> Vec<String> {
    let toml = std::fs::read_to_string(root().join(manifest)).unwrap();
    let normal = toml
        .split("[dependencies]")
        .nth(1)
        .unwrap_or_else(|| panic!("{manifest} has no [dependencies] table"))
        .split("\n[")
        .next()
        .unwrap();
    normal
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim().to_string()))
        .filter(|k| !k.is_empty())
        .collect()
}

#[test]
fn the_core_pulls_in_no_terminal_command_line_or_progress_bar_crate() {
    let core = lock_closure("osteoai-core");
    // The closure is real: the domain's own dependencies are in it.
    for needed in [
        "burn",
        "lightgbm3",
        "osteoai-kernels",
        "osteoai-vision",
        "dicom-object",
        "image",
    ] {
        assert!(
            core.contains(needed),
            "{needed} missing from the core's closure"
        );
    }
    for banned in [
        "ratatui",
        "ratatui-image",
        "crossterm",
        "clap",
        "clap_builder",
        "indicatif",
        "color-eyre",
        "osteoai",
    ] {
        assert!(
            !core.contains(banned),
            "osteoai-core depends on {banned} (directly or through a dependency)"
        );
    }
    // The audit's pixel geometry depends on nothing at all (and so on no other member).
    let own = normal_dependencies("crates/vision/Cargo.toml");
    assert!(own.is_empty(), "osteoai-vision has dependencies: {own:?}");
    let kernels = lock_closure("osteoai-kernels");
    for banned in ["osteoai-core", "osteoai", "burn", "ratatui", "clap"] {
        assert!(
            !kernels.contains(banned),
            "osteoai-kernels depends on {banned}"
        );
    }
}

// ---------------------------------------------------------------- modules

/// A source file's text with comments, string and character literals blanked, and every item
/// under `#[cfg(test)]` removed.
fn production_code(text: &str) -> String {
    // One ASCII byte per character, so that byte offsets are character boundaries.
    let text: String = text
        .chars()
        .map(|c| if c.is_ascii() { c } else { 'x' })
        .collect();
    let b = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let end = (i + 2..b.len().saturating_sub(1))
                .find(|&k| &b[k..k + 2] == b"*/")
                .map_or(b.len(), |k| k + 2);
            i = end;
        } else if b[i] == b'"' {
            // A string (raw strings in this code base hold no quote-hash sequences that matter
            // for imports; their contents are blanked like any other).
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.extend_from_slice(b"\"\"");
        } else if b[i] == b'\''
            && i + 2 < b.len()
            && (b[i + 2] == b'\''
                || (b[i + 1] == b'\\' && b[i + 2..].iter().take(8).any(|&c| c == b'\'')))
        {
            // A character literal ('x', '\n', '\u{..}'), not a lifetime.
            i += 1;
            while i < b.len() && b[i] != b'\'' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.extend_from_slice(b"' '");
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    // Remove `#[cfg(test)]` items: up to the end of their `;` or of their balanced braces.
    let mut s = String::from_utf8_lossy(&out).into_owned();
    while let Some(at) = s.find("#[cfg(test)]") {
        let rest = &s[at..];
        let semi = rest.find(';');
        let brace = rest.find('{');
        let end = match (semi, brace) {
            (Some(sc), Some(br)) if sc < br => at + sc + 1,
            (_, Some(br)) => {
                let mut depth = 0;
                let mut end = s.len();
                for (k, c) in s[at + br..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = at + br + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (Some(sc), None) => at + sc + 1,
            (None, None) => s.len(),
        };
        s.replace_range(at..end, "");
    }
    s
}

/// Every module path a file's code names: `crate::a::b`, `super::x`, `self::y`, and the
/// members of `use` groups, resolved against the file's own module path.
fn referenced_paths(code: &str, here: &[String]) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let b = code.as_bytes();
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < b.len() {
        let starts = ["crate::", "super::", "self::"]
            .into_iter()
            .find(|p| code[i..].starts_with(p));
        let boundary = i == 0 || !(is_ident(b[i - 1]) || b[i - 1] == b':');
        match starts {
            Some(_) if boundary => {
                let end = path_end(code, i);
                expand(&code[i..end], &mut Vec::new(), &mut found);
                i = end;
            }
            _ => i += 1,
        }
    }
    found
        .into_iter()
        .filter_map(|segments| resolve(&segments, here))
        .collect()
}

/// The end of a path starting at `i`, braces included.
fn path_end(code: &str, i: usize) -> usize {
    let b = code.as_bytes();
    let mut j = i;
    let mut depth = 0i32;
    while j < b.len() {
        let c = b[j];
        if c == b'{' {
            depth += 1;
        } else if c == b'}' {
            if depth == 0 {
                break;
            }
            depth -= 1;
            if depth == 0 {
                return j + 1;
            }
        } else if depth == 0 && !(c.is_ascii_alphanumeric() || c == b'_' || c == b':') {
            break;
        }
        j += 1;
    }
    j
}

/// `a::{b::{c, d}, e}` → [a b c], [a b d], [a e].
fn expand(path: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let path = path.trim();
    match path.find('{') {
        None => {
            let mut p = prefix.clone();
            p.extend(
                path.split("::")
                    .map(|s| {
                        s.trim()
                            .split(" as ")
                            .next()
                            .unwrap_or("")
                            .trim()
                            .to_string()
                    })
                    .filter(|s| !s.is_empty()),
            );
            out.push(p);
        }
        Some(open) => {
            let head: Vec<String> = path[..open]
                .split("::")
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            let inner = &path[open + 1..path.rfind('}').unwrap_or(path.len())];
            let n = prefix.len();
            prefix.extend(head);
            let mut depth = 0;
            let mut start = 0;
            for (k, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(&inner[start..k], prefix, out);
                        start = k + 1;
                    }
                    _ => {}
                }
            }
            expand(&inner[start..], prefix, out);
            prefix.truncate(n);
        }
    }
}

/// An absolute module path (without `crate`) from a relative one.
fn resolve(segments: &[String], here: &[String]) -> Option<Vec<String>> {
    let mut abs: Vec<String> = Vec::new();
    let mut rest = segments;
    match segments.first().map(String::as_str) {
        Some("crate") => rest = &segments[1..],
        Some("self") => {
            abs = here.to_vec();
            rest = &segments[1..];
        }
        Some("super") => {
            abs = here.to_vec();
            while rest.first().map(String::as_str) == Some("super") {
                abs.pop()?;
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    abs.extend(rest.iter().filter(|s| *s != "self").cloned());
    Some(abs)
}

/// The modules of a crate by file, with their production code: `a/b.rs` and `a/b/mod.rs` are
/// `[a, b]`; files that their parent declares under `#[cfg(test)]` are left out.
fn modules(src: &Path) -> BTreeMap<Vec<String>, (PathBuf, String)> {
    let mut out = BTreeMap::new();
    let mut test_only: BTreeSet<Vec<String>> = BTreeSet::new();
    let mut files = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    for p in &files {
        let rel = p.strip_prefix(src).unwrap();
        let mut path: Vec<String> = rel
            .with_extension("")
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        if matches!(
            path.last().map(String::as_str),
            Some("mod" | "lib" | "main")
        ) {
            path.pop();
        }
        let text = std::fs::read_to_string(p).unwrap();
        // `#[cfg(test)] mod x;` children.
        let flat = text.replace(['\n', ' '], "");
        for part in flat.split("#[cfg(test)]").skip(1) {
            let part = part.strip_prefix("pub(crate)").unwrap_or(part);
            if let Some(decl) = part.strip_prefix("mod")
                && let Some(name) = decl.split(';').next()
                && name.chars().all(|c| c.is_alphanumeric() || c == '_')
            {
                let mut child = path.clone();
                child.push(name.to_string());
                test_only.insert(child);
            }
        }
        out.insert(path, (rel.to_path_buf(), production_code(&text)));
    }
    out.retain(|path, _| !test_only.iter().any(|t| path.starts_with(t)));
    out
}

/// Edges between sibling modules (same parent) that production code creates, with the files
/// that create them: `(parent, from, to) → files`.
type Edges = BTreeMap<(Vec<String>, String, String), BTreeSet<PathBuf>>;

fn sibling_edges(src: &Path) -> (Edges, BTreeSet<Vec<String>>) {
    let mods = modules(src);
    let known: BTreeSet<Vec<String>> = mods.keys().cloned().collect();
    let mut edges = Edges::new();
    for (here, (file, code)) in &mods {
        for target in referenced_paths(code, here) {
            let common = here.iter().zip(&target).take_while(|(a, b)| a == b).count();
            if common >= here.len() || common >= target.len() {
                continue; // a module naming itself, its descendants or an ancestor's items
            }
            let sibling = target[..=common].to_vec();
            if !known.contains(&sibling) {
                continue; // an item of the common parent, not a module
            }
            edges
                .entry((
                    here[..common].to_vec(),
                    here[common].clone(),
                    target[common].clone(),
                ))
                .or_default()
                .insert(file.clone());
        }
    }
    (edges, known)
}

/// Cycles among siblings, each as its members and the files that close it.
fn cycles(edges: &Edges) -> Vec<String> {
    let mut by_parent: BTreeMap<&Vec<String>, BTreeMap<&String, Vec<&String>>> = BTreeMap::new();
    for (parent, from, to) in edges.keys() {
        by_parent
            .entry(parent)
            .or_default()
            .entry(from)
            .or_default()
            .push(to);
    }
    let mut found = Vec::new();
    for (parent, graph) in by_parent {
        // Reachability by depth-first search from every node: a node that reaches itself is
        // on a cycle (graphs here have tens of nodes).
        for &start in graph.keys() {
            let mut seen = BTreeSet::new();
            let mut todo: Vec<&String> = graph[start].clone();
            let mut back = false;
            while let Some(n) = todo.pop() {
                if n == start {
                    back = true;
                    break;
                }
                if seen.insert(n) {
                    todo.extend(graph.get(n).cloned().unwrap_or_default());
                }
            }
            if back {
                let via: Vec<String> = graph[start]
                    .iter()
                    .map(|to| {
                        let files = &edges[&((*parent).clone(), start.clone(), (*to).clone())];
                        format!("{to} ({files:?})")
                    })
                    .collect();
                found.push(format!(
                    "{}::{start} is on a cycle; it uses {}",
                    if parent.is_empty() {
                        "crate".into()
                    } else {
                        parent.join("::")
                    },
                    via.join(", ")
                ));
            }
        }
    }
    found
}

#[test]
fn the_reader_of_imports_sees_groups_super_and_test_items() {
    let code = production_code(
        "use crate::{a::{b, c::D}, e};\nuse super::f::G;\nfn x() { crate::h::i(\"crate::j\"); }\n\
         #[cfg(test)]\nmod tests { use crate::k; fn y() { let s = '{'; } }\nfn z() { self::m::n(); }\n",
    );
    let here = vec!["p".to_string(), "q".to_string()];
    let paths: BTreeSet<String> = referenced_paths(&code, &here)
        .iter()
        .map(|p| p.join("::"))
        .collect();
    let want: BTreeSet<String> = ["a::b", "a::c::D", "e", "p::f::G", "h::i", "p::q::m::n"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(paths, want);
}

#[test]
fn no_modules_of_one_parent_import_each_other_in_a_circle() {
    let mut problems = Vec::new();
    let mut counted = 0;
    for src in [
        "crates/core/src",
        "crates/kernels/src",
        "crates/vision/src",
        "src",
    ] {
        let (mut edges, known) = sibling_edges(&root().join(src));
        assert!(known.len() > 3, "{src}: no modules found");
        counted += edges.len();
        // The dashboard's files (one folder, no sub-folders): state, views and renderers of
        // one ratatui app refer to each other, as the issue's rule allows ("no two modules in
        // different folders import each other"). Everywhere else, no cycle at all.
        let tolerated = |parent: &Vec<String>, a: &String, b: &String| {
            src == "src"
                && parent.as_slice() == ["tui"]
                && [a, b].iter().all(|m| {
                    let folder = root().join(src).join("tui").join(m.as_str());
                    !folder.is_dir()
                })
        };
        edges.retain(|(parent, a, b), _| !tolerated(parent, a, b));
        problems.extend(cycles(&edges).into_iter().map(|c| format!("{src}: {c}")));
    }
    assert!(
        counted > 50,
        "only {counted} import edges read: the reader is broken"
    );
    assert!(
        problems.is_empty(),
        "import cycles:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_front_ends_never_import_each_other_and_options_imports_neither() {
    let (edges, known) = sibling_edges(&root().join("src"));
    for m in ["cli", "tui", "options"] {
        assert!(known.contains(&vec![m.to_string()]), "src/{m} missing");
    }
    let root_edges: BTreeSet<(&str, &str)> = edges
        .keys()
        .filter(|(parent, _, _)| parent.is_empty())
        .map(|(_, a, b)| (a.as_str(), b.as_str()))
        .collect();
    // The shared module is used by both (the check reads real edges).
    assert!(root_edges.contains(&("cli", "options")) && root_edges.contains(&("tui", "options")));
    for banned in [
        ("cli", "tui"),
        ("tui", "cli"),
        ("options", "cli"),
        ("options", "tui"),
    ] {
        assert!(
            !root_edges.contains(&banned),
            "src/{} imports src/{} ({:?})",
            banned.0,
            banned.1,
            edges[&(vec![], banned.0.to_string(), banned.1.to_string())]
        );
    }
}
