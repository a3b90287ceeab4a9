//! The documentation stays true to the code: the configuration reference lists exactly the
//! keys the schema has, and every link between the README and `docs/` leads somewhere.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

/// The keys of the schema, as dotted paths (lists are values, maps are walked).
fn schema_keys() -> BTreeSet<String> {
    let yaml = cxr_config::Config::default().to_yaml();
    cxr_config::flatten_yaml(&yaml, "defaults").expect("the defaults flatten").into_iter().map(|(k, _)| k).collect()
}

/// The keys `docs/configuration.md` documents: in each `**section** —` paragraph, every
/// `` `key` `` followed by its default in parentheses.
fn documented_keys(text: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for paragraph in text.split("\n\n") {
        let Some(rest) = paragraph.trim_start().strip_prefix("**") else { continue };
        let Some((section, body)) = rest.split_once("** —") else { continue };
        let mut tail = body;
        while let Some(start) = tail.find('`') {
            let after = &tail[start + 1..];
            let Some(end) = after.find('`') else { break };
            let word = &after[..end];
            let follows = after[end + 1..].trim_start();
            // A value in a list of allowed values (`` (`a` | `b` (why)) ``) is not a key.
            let before = tail[..start].trim_end();
            let is_key = !before.ends_with('|')
                && !before.ends_with('(')
                && !word.is_empty()
                && word.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
                && follows.starts_with('(');
            if is_key {
                keys.insert(format!("{section}.{word}"));
            }
            tail = &after[end + 1..];
        }
    }
    keys
}

#[test]
fn the_configuration_reference_lists_exactly_the_schemas_keys() {
    let root = common::workspace_root();
    let text = std::fs::read_to_string(root.join("docs/configuration.md")).expect("docs/configuration.md");
    let (schema, documented) = (schema_keys(), documented_keys(&text));
    assert!(schema.len() > 50, "the schema has {} keys?", schema.len());
    let missing: Vec<_> = schema.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&schema).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "docs/configuration.md: undocumented keys {missing:?}; documented keys the schema does not have {unknown:?}"
    );
}

/// GitHub's anchor for a heading: lower case, spaces to `-`, punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    text.lines().filter_map(|l| l.strip_prefix('#')).map(|l| anchor(l.trim_start_matches('#'))).collect()
}

/// Every `](target)` link of a Markdown file that is not a web address.
fn local_links(text: &str) -> Vec<String> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .filter(|t| !t.starts_with("http://") && !t.starts_with("https://"))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_link_of_the_readme_and_docs_leads_to_a_file_and_heading_that_exist() {
    let root = common::workspace_root();
    let mut pages = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).expect("docs/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in &pages {
        let text = std::fs::read_to_string(page).expect("readable");
        for link in local_links(&text) {
            let (file, fragment) = link.split_once('#').map_or((link.as_str(), None), |(f, a)| (f, Some(a)));
            let target =
                if file.is_empty() { page.clone() } else { page.parent().unwrap_or(Path::new(".")).join(file) };
            checked += 1;
            if !target.exists() {
                broken.push(format!("{}: {link} (no such file)", page.display()));
                continue;
            }
            if let Some(fragment) = fragment {
                let text = std::fs::read_to_string(&target).unwrap_or_default();
                if !anchors(&text).contains(fragment) {
                    broken.push(format!("{}: {link} (no such heading)", page.display()));
                }
            }
        }
    }
    assert!(checked > 20, "only {checked} links found");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_license_files_are_the_license_the_crates_declare() {
    let root = common::workspace_root();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
    assert!(manifest.contains(r#"license = "MIT OR Apache-2.0""#), "Cargo.toml declares another license");
    let license = std::fs::read_to_string(root.join("LICENSE")).expect("LICENSE");
    assert!(
        license.contains("MIT OR Apache-2.0") && license.contains("LICENSE-MIT") && license.contains("LICENSE-APACHE")
    );
    let apache = std::fs::read_to_string(root.join("LICENSE-APACHE")).expect("LICENSE-APACHE");
    assert!(apache.contains("Apache License") && apache.contains("Version 2.0, January 2004"));
    let mit = std::fs::read_to_string(root.join("LICENSE-MIT")).expect("LICENSE-MIT");
    assert!(mit.contains("Permission is hereby granted, free of charge"));
}
