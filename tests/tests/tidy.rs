//! Rules the code keeps, checked on its text in the spirit of rust-analyzer's `tidy`
//! test: fast, no binary built or run. Each test names every place that breaks its rule.
//!
//! - every Rust file of the workspace's crates starts with a `//!` module doc;
//! - no `dbg!`, `todo!` or `unimplemented!` outside tests;
//! - no function outside tests over 80 lines, counted as `../shared/tools/long-functions`
//!   counts them;
//! - `docs/architecture.md` names tests, files and items that exist;
//! - every dependency a `Cargo.toml` declares is used by the code that can use it (a
//!   dev-dependency by the crate's tests too, a build-dependency by `build.rs`), and every
//!   `[workspace.dependencies]` entry by some crate.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use regex::Regex;

/// The workspace's root folder.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `path` relative to the workspace's root, for messages.
fn shown(path: &Path) -> String {
    path.strip_prefix(root()).unwrap_or(path).display().to_string()
}

/// Fails with every broken rule, one per line.
fn assert_none(rule: &str, broken: Vec<String>) {
    assert!(broken.is_empty(), "{rule}:\n  {}", broken.join("\n  "));
}

/// The member crates' folders, from the root `Cargo.toml`'s `members`.
fn members() -> Vec<PathBuf> {
    let manifest = read(&root().join("Cargo.toml"));
    let list = manifest.split("members = [").nth(1).and_then(|rest| rest.split(']').next()).expect("members");
    let quoted = Regex::new(r#""([^"]+)""#).unwrap();
    quoted.captures_iter(list).map(|c| root().join(&c[1])).collect()
}

/// Every `.rs` file under `dir`, sorted; `target/` and hidden folders left out.
fn rust_files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() && name != "target" && !name.starts_with('.') {
                stack.push(path);
            } else if path.is_file() && name.ends_with(".rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Every `.rs` file of the member crates.
fn rust_files() -> Vec<PathBuf> {
    members().iter().flat_map(|m| rust_files_under(m)).collect()
}

/// Whether `path` is test code: a `tests.rs`, or a file below a `tests` folder inside
/// its crate (an integration test, this crate's tests).
fn is_test_file(path: &Path) -> bool {
    let inner = path.strip_prefix(root()).unwrap_or(path);
    let parts: Vec<_> = inner.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    inner.file_name().is_some_and(|n| n == "tests.rs") || parts[1..parts.len() - 1].iter().any(|p| p == "tests")
}

#[test]
fn every_rust_file_starts_with_a_module_doc() {
    let broken = rust_files()
        .into_iter()
        .filter(|f| {
            let text = read(f);
            let first = text.lines().next().unwrap_or_default();
            !first.starts_with("//!") && !first.contains("@generated")
        })
        .map(|f| format!("{}: the first line is not a `//!` doc of what the file is for", shown(&f)))
        .collect();
    assert_none("files without a module doc", broken);
}

#[test]
fn no_debugging_macros_outside_tests() {
    // Spelled in two parts so that this file does not hold what it looks for.
    let macros = [concat!("dbg", "!("), concat!("todo", "!("), concat!("unimplemented", "!(")];
    let mut broken = Vec::new();
    for file in rust_files().into_iter().filter(|f| !is_test_file(f)) {
        let text = read(&file);
        for (n, line) in non_test_lines(&text).into_iter().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for found in macros.iter().filter(|m| code.contains(**m)) {
                broken.push(format!("{}:{}: {found}", shown(&file), n + 1));
            }
        }
    }
    assert_none("debugging macros outside tests", broken);
}

/// The lines of a file before its first `#[cfg(test)]` line (its tests module).
fn non_test_lines(text: &str) -> Vec<&str> {
    let lines = python_lines(text);
    let stop = lines.iter().position(|l| l.trim_matches(python_space) == "#[cfg(test)]").unwrap_or(lines.len());
    lines[..stop].to_vec()
}

// ---------------------------------------------------------------------------------------
// Long functions: the rule of `../shared/tools/long-functions`, line for line.

/// The longest a function outside tests may be, in lines.
const MAX_FUNCTION_LINES: usize = 80;

/// Python's `str.splitlines()`: lines split at `\n`, `\r\n`, `\r` and the other line
/// boundaries Python knows, as the shared tool splits them.
fn python_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if matches!(c, '\n' | '\r' | '\x0b' | '\x0c' | '\x1c' | '\x1d' | '\x1e' | '\u{85}' | '\u{2028}' | '\u{2029}') {
            lines.push(&text[start..i]);
            let crlf = c == '\r' && chars.peek().is_some_and(|(_, next)| *next == '\n');
            if crlf {
                chars.next();
            }
            start = i + c.len_utf8() + usize::from(crlf);
        }
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// Python's `str.isspace()`, for `str.strip()`.
fn python_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// Every function longer than `limit` lines, as the shared tool finds them: in
/// `*/src/**/*.rs` of the root's folders, not in a `tests.rs` or a `tests` folder, before
/// the first `#[cfg(test)]` line; a function runs from its `fn` line to the line where
/// its braces balance (every `{` and `}` of a line counted, strings and comments too).
/// Each as `path:line name (N lines)`.
fn long_functions(limit: usize) -> Vec<String> {
    let fn_line = Regex::new(r"^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)").unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(root())
        .unwrap()
        .map(|e| e.unwrap().path().join("src"))
        .filter(|src| src.is_dir())
        .flat_map(|src| rust_files_including_hidden(&src))
        .collect();
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let relative = file.strip_prefix(root()).unwrap();
        let parts: Vec<_> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        if relative.file_name().unwrap() == "tests.rs" || parts[1..parts.len() - 1].iter().any(|p| p == "tests") {
            continue;
        }
        let text = read(&file);
        let lines = non_test_lines(&text);
        let mut i = 0;
        while i < lines.len() {
            let Some(name) =
                fn_line.captures(lines[i]).filter(|_| !lines[i].trim_end_matches(python_space).ends_with(';'))
            else {
                i += 1;
                continue;
            };
            let (mut depth, mut j, mut opened) = (0i64, i, false);
            while j < lines.len() {
                depth += lines[j].matches('{').count() as i64 - lines[j].matches('}').count() as i64;
                opened = opened || lines[j].contains('{');
                if opened && depth <= 0 {
                    break;
                }
                j += 1;
            }
            if j - i + 1 > limit {
                found.push(format!("{}:{} {} ({} lines)", relative.display(), i + 1, &name[6], j - i + 1));
            }
            i = if opened { j + 1 } else { i + 1 };
        }
    }
    found
}

/// Every `.rs` file under `dir` but those in a `target` folder (hidden folders included, as
/// Python's `Path.glob` walks them).
fn rust_files_including_hidden(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() && path.file_name().unwrap() != "target" {
                stack.push(path);
            } else if path.is_file() && path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files
}

#[test]
fn no_function_outside_tests_is_over_80_lines() {
    assert_none(
        &format!(
            "functions over {MAX_FUNCTION_LINES} lines (split them; ../shared/tools/long-functions lists the same)"
        ),
        long_functions(MAX_FUNCTION_LINES),
    );
}

/// The rule above is the shared tool's: at lower limits, where it finds some, both find the
/// same functions. Skipped where the tool or Python is missing.
#[test]
fn the_long_function_rule_agrees_with_the_shared_tool() {
    let tool = root().join("../shared/tools/long-functions");
    if !tool.is_file() {
        eprintln!("skipped: {} is missing", tool.display());
        return;
    }
    for limit in [40, 20] {
        let run = std::process::Command::new("python3").arg(&tool).arg(limit.to_string()).current_dir(root()).output();
        let Ok(output) = run else {
            eprintln!("skipped: python3 is missing");
            return;
        };
        let stdout = String::from_utf8_lossy(&output.stdout);
        let mut theirs: Vec<&str> = stdout.lines().filter(|l| !l.starts_with("no function over")).collect();
        let mut ours = long_functions(limit);
        theirs.sort();
        ours.sort();
        assert_eq!(ours, theirs, "at {limit} lines, this test and the shared tool disagree");
    }
}

// ---------------------------------------------------------------------------------------
// docs/architecture.md names real tests, files and items.

/// What the workspace's sources define: names after `fn`, items by kind, every word.
struct Sources {
    /// Each file's text.
    files: BTreeMap<PathBuf, String>,
    /// Names defined with `fn`, `mod`, `struct`, `enum`, `trait`, `type`, `const`, `static`,
    /// with the files that define them and how.
    items: BTreeMap<String, Vec<(PathBuf, &'static str)>>,
    /// Every identifier-like word.
    words: BTreeSet<String>,
}

impl Sources {
    fn read() -> Sources {
        let item = Regex::new(r"\b(fn|mod|struct|enum|trait|type|const|static)\s+([A-Za-z_][A-Za-z0-9_]*)").unwrap();
        let word = Regex::new(r"[A-Za-z_][A-Za-z0-9_]*").unwrap();
        let mut sources = Sources { files: BTreeMap::new(), items: BTreeMap::new(), words: BTreeSet::new() };
        for file in rust_files() {
            let text = read(&file);
            for c in item.captures_iter(&text) {
                let kind = ["fn", "mod", "struct", "enum", "trait", "type", "const", "static"]
                    .into_iter()
                    .find(|k| *k == &c[1])
                    .unwrap();
                sources.items.entry(c[2].to_string()).or_default().push((file.clone(), kind));
            }
            sources.words.extend(word.find_iter(&text).map(|w| w.as_str().to_string()));
            sources.files.insert(file, text);
        }
        sources
    }

    /// The files that define `name` (a prefix when it ends in `*`) as one of `kinds`.
    fn defining(&self, name: &str, kinds: &[&str]) -> Vec<&Path> {
        let matches = |n: &str| name.strip_suffix('*').map_or(n == name, |prefix| n.starts_with(prefix));
        self.items
            .iter()
            .filter(|(n, _)| matches(n))
            .flat_map(|(_, defs)| defs.iter().filter(|(_, kind)| kinds.contains(kind)).map(|(f, _)| f.as_path()))
            .collect()
    }
}

/// One backticked span of the document, with the crate folder of the `###` section it is
/// in (`### \`cxr-config\` (\`config/\`)`) and the file it is attributed to when it
/// follows `\`path.rs\`: ` in a list of names.
struct Span {
    text: String,
    line: usize,
    section_crate: Option<PathBuf>,
    in_file: Option<String>,
}

/// The backticked spans of `markdown`, fenced blocks left out.
fn spans(markdown: &str) -> Vec<Span> {
    let heading = Regex::new(r"^### `[^`]+` \(`([^`]+)/`\)").unwrap();
    let (mut text, mut at, mut section_crate, mut fenced) = (String::new(), Vec::new(), None, false);
    for (n, line) in markdown.lines().enumerate() {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        if fenced || line.starts_with("```") {
            continue;
        }
        if line.starts_with('#') {
            section_crate = heading.captures(line).map(|c| root().join(&c[1]));
        }
        text.push_str(line);
        text.push('\n');
        // The line and section of each byte of `text`.
        at.extend(std::iter::repeat_n((n + 1, section_crate.clone()), line.len() + 1));
    }
    let parts: Vec<&str> = text.split('`').collect();
    let (mut out, mut offset, mut in_file) = (Vec::new(), 0, None::<String>);
    for (i, part) in parts.iter().enumerate() {
        if i % 2 == 1 {
            let (line, section_crate) = at[offset].clone();
            out.push(Span { text: part.to_string(), line, section_crate, in_file: in_file.clone() });
            // A file followed by `:` starts a list of its test names.
            let gap = parts.get(i + 1).copied().unwrap_or_default();
            if part.ends_with(".rs") && gap.starts_with(':') && gap[1..].trim().is_empty() {
                in_file = Some(part.to_string());
            }
        } else if !part.trim_start_matches(':').trim_matches(|c: char| c == ',' || c.is_whitespace()).is_empty() {
            in_file = None;
        }
        offset += part.len() + 1;
    }
    out
}

/// The files `name` (a path, relative to the root or to a crate, or a bare file name, `*`
/// allowed in its last part) can mean; empty when there is none.
fn resolve(name: &str, section_crate: Option<&Path>) -> Vec<PathBuf> {
    let root = root();
    let pattern = |p: &Path| -> bool {
        let (Some(file), Some(wanted)) = (p.file_name(), Path::new(name).file_name()) else { return false };
        let (file, wanted) = (file.to_string_lossy(), wanted.to_string_lossy());
        match wanted.split_once('*') {
            Some((prefix, suffix)) => file.starts_with(prefix) && file.ends_with(suffix),
            None => file == wanted,
        }
    };
    let parent = Path::new(name).parent().unwrap_or(Path::new(""));
    let mut bases = vec![root.clone()];
    bases.extend(section_crate.map(|c| vec![c.to_path_buf(), c.join("src")]).unwrap_or_default());
    let mut found: Vec<PathBuf> = bases
        .iter()
        .filter_map(|b| std::fs::read_dir(b.join(parent)).ok())
        .flat_map(|entries| entries.map(|e| e.unwrap().path()))
        .filter(|p| pattern(p))
        .collect();
    if found.is_empty() && !name.contains('*') {
        // A file named by its name (or its last folders) alone, anywhere in its crate.
        let scope = section_crate.map_or_else(members, |c| vec![c.to_path_buf()]);
        let everything = scope.iter().flat_map(|c| all_files_under(c)).collect::<Vec<_>>();
        found = everything.into_iter().filter(|p| p.ends_with(name)).collect();
    }
    found
}

/// Every file under `dir` but those in `target/` and hidden folders.
fn all_files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() && name != "target" && !name.starts_with('.') {
                stack.push(path);
            } else if path.is_file() {
                files.push(path);
            }
        }
    }
    files
}

/// The package names of the member crates, with their folders.
fn packages() -> BTreeMap<String, PathBuf> {
    let name = Regex::new(r#"(?m)^name\s*=\s*"([^"]+)""#).unwrap();
    members()
        .into_iter()
        .filter_map(|m| name.captures(&read(&m.join("Cargo.toml"))).map(|c| (c[1].to_string(), m.clone())))
        .collect()
}

#[test]
fn the_architecture_document_names_tests_files_and_items_that_exist() {
    let broken = architecture_problems(&read(&root().join("docs/architecture.md")));
    assert_none("names in docs/architecture.md that are not in the workspace", broken);
}

/// Every test, file or item `markdown` names that the workspace does not have, and every
/// crate section whose folder is not that crate's.
fn architecture_problems(markdown: &str) -> Vec<String> {
    let sources = Sources::read();
    let packages = packages();
    let mut broken = Vec::new();
    for span in spans(markdown) {
        let problem = check_span(&span, &sources, &packages);
        broken.extend(problem.map(|p| format!("docs/architecture.md:{}: `{}` {p}", span.line, span.text)));
    }
    let heading = Regex::new(r"(?m)^### `([^`]+)` \(`([^`]+)/`\)").unwrap();
    for c in heading.captures_iter(markdown) {
        if packages.get(&c[1]) != Some(&root().join(&c[2])) {
            broken
                .push(format!("docs/architecture.md: section `{}` (`{}/`) is not that package's folder", &c[1], &c[2]));
        }
    }
    broken
}

/// What is wrong with one span, if anything: a test name without its `fn`, a file that
/// does not exist, an item its crate or type does not define.
fn check_span(span: &Span, sources: &Sources, packages: &BTreeMap<String, PathBuf>) -> Option<String> {
    let snake = Regex::new(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$").unwrap();
    let camel = Regex::new(r"^[A-Z][a-z][A-Za-z0-9]*$").unwrap();
    let item_path = Regex::new(r"^[A-Za-z_][A-Za-z0-9_-]*(::[A-Za-z_][A-Za-z0-9_]*\*?)+$").unwrap();
    let file = Regex::new(r"^[^\s<.-][^\s]*\.(rs|md|sh|mk|py|toml|txt)$|^Makefile$").unwrap();
    let t = span.text.as_str();
    let crate_dir = span.section_crate.as_deref();
    if snake.is_match(t) {
        return check_name(t, span, sources);
    }
    if file.is_match(t) && !t.starts_with("EXP") {
        return resolve(t, crate_dir).is_empty().then(|| "is not a file of the workspace".to_string());
    }
    if camel.is_match(t) {
        let kinds = ["struct", "enum", "trait", "type"];
        return sources.defining(t, &kinds).is_empty().then(|| "is not a type of the workspace".to_string());
    }
    if item_path.is_match(t) {
        let (first, rest) = t.split_once("::").unwrap();
        let last = rest.rsplit("::").next().unwrap();
        let any = ["fn", "mod", "struct", "enum", "trait", "type", "const", "static"];
        if let Some(dir) = packages.get(&first.replace('_', "-")) {
            let in_crate = sources.defining(last, &any).iter().any(|f| f.starts_with(dir));
            return (!in_crate).then(|| format!("names no item of {}", shown(dir)));
        }
        if !sources.defining(first, &["struct", "enum", "trait"]).is_empty() {
            return sources.defining(last, &["fn"]).is_empty().then(|| format!("names no method of {first}"));
        }
    }
    None
}

/// A snake_case name: a test's name (four words or more, or one listed after its file) is a
/// `fn` (in that file); a shorter one (a function, module, field, output) is in the code.
fn check_name(name: &str, span: &Span, sources: &Sources) -> Option<String> {
    let fns = sources.defining(name, &["fn"]);
    if let Some(file) = &span.in_file {
        let files = resolve(file, span.section_crate.as_deref());
        return (!fns.iter().any(|f| files.iter().any(|g| g == f))).then(|| format!("is no `fn` of {file}"));
    }
    if name.split('_').count() >= 4 {
        return fns.is_empty().then(|| "is no `fn` of the workspace (a renamed or removed test?)".to_string());
    }
    (!sources.words.contains(name)).then(|| "is nowhere in the workspace's code".to_string())
}

// ---------------------------------------------------------------------------------------
// Cargo.toml hygiene.

/// The dependencies a manifest declares, by table: `dependencies`, `dev-dependencies`,
/// `build-dependencies` (a `[target.'cfg(..)'.dependencies]` counts as its kind).
fn declared(manifest: &str) -> BTreeMap<&'static str, Vec<String>> {
    let key = Regex::new(r"^([A-Za-z0-9_-]+)(\.[A-Za-z]+)?\s*=").unwrap();
    let table = Regex::new(
        r"^\[(?:target\.[^\]]+\.)?(dependencies|dev-dependencies|build-dependencies)(?:\.([A-Za-z0-9_-]+))?\]",
    )
    .unwrap();
    let mut out: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut kind = None;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            kind = table.captures(line).map(|c| {
                let kind = ["dependencies", "dev-dependencies", "build-dependencies"].into_iter().find(|k| *k == &c[1]);
                (kind.unwrap(), c.get(2).map(|m| m.as_str().to_string()))
            });
            if let Some((kind, Some(name))) = &kind {
                out.entry(kind).or_default().push(name.clone());
            }
            continue;
        }
        if let (Some((kind, None)), Some(c)) = (&kind, key.captures(line)) {
            out.entry(kind).or_default().push(c[1].to_string());
        }
    }
    out
}

/// Whether `text` uses the crate `name` (its `-` as `_`): `use name`, `name::` not after
/// another path segment, or `extern crate name` (cargo-machete's patterns).
fn uses(text: &str, name: &str) -> bool {
    let name = regex::escape(&name.replace('-', "_"));
    let pattern = format!(r"(?m)use (::)?{name}(::|;| as)|(?:[^:\w]|^|\W::){name}::|extern crate {name}( |;)");
    Regex::new(&pattern).unwrap().is_match(text)
}

#[test]
fn every_declared_dependency_is_used() {
    let mut broken = Vec::new();
    for member in members() {
        let manifest = read(&member.join("Cargo.toml"));
        let files = rust_files_under(&member);
        let build_script = member.join("build.rs");
        let text_of = |build: bool| {
            files.iter().filter(|f| (**f == build_script) == build).map(|f| read(f)).collect::<Vec<_>>().join("\n")
        };
        let (code, build) = (text_of(false), text_of(true));
        for (kind, names) in declared(&manifest) {
            let searched = if kind == "build-dependencies" { &build } else { &code };
            for name in names.iter().filter(|n| !uses(searched, n)) {
                broken.push(format!("{}/Cargo.toml: [{kind}] {name} is not used", shown(&member)));
            }
        }
    }
    // Every workspace dependency is some member's.
    let root_manifest = read(&root().join("Cargo.toml"));
    let table = root_manifest.split("[workspace.dependencies]").nth(1).unwrap().split("\n[").next().unwrap();
    let manifests: Vec<String> = members().iter().map(|m| read(&m.join("Cargo.toml"))).collect();
    let key = Regex::new(r"(?m)^([A-Za-z0-9_-]+)\s*=").unwrap();
    for c in key.captures_iter(table) {
        if !manifests.iter().any(|m| declared(m).values().flatten().any(|n| *n == c[1])) {
            broken.push(format!("Cargo.toml: [workspace.dependencies] {} is not used by any crate", &c[1]));
        }
    }
    assert_none("unused dependencies", broken);
}
