//! The code's shape is part of what a newcomer relies on (issue 14): no
//! file under `src/` with more than 500 lines of code before its tests, no
//! function longer than 100 lines, and each outside-system client knowing
//! only its own system. This test keeps those true as the code grows.
//!
//! "Lines of code" are the non-blank lines that are not `//` comments,
//! counted up to the file's `#[cfg(test)]` module.

use std::path::{Path, PathBuf};

const MAX_FILE_CODE: usize = 500;
const MAX_FN_LINES: usize = 100;

fn sources() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    out.sort();
    out
}

/// The lines of a file before its unit tests.
fn before_tests(text: &str) -> Vec<&str> {
    text.lines()
        .take_while(|l| !l.starts_with("#[cfg(test)]"))
        .collect()
}

fn code_lines(lines: &[&str]) -> usize {
    lines
        .iter()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with("//"))
        .count()
}

/// The name of the function a line starts, if it starts one with a body.
fn starts_fn(line: &str) -> Option<&str> {
    let mut rest = line.trim_start();
    for prefix in [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "async ",
        "const ",
        "unsafe ",
    ] {
        rest = rest.strip_prefix(prefix).unwrap_or(rest);
    }
    let rest = rest.strip_prefix("async ").unwrap_or(rest);
    let name = rest.strip_prefix("fn ")?;
    let end = name.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
    (!line.trim_end().ends_with(';')).then_some(&name[..end])
}

/// Each function's name and length in lines: from its `fn` line to the
/// closing brace at the same indentation (rustfmt's layout).
fn functions<'a>(lines: &[&'a str]) -> Vec<(&'a str, usize)> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = starts_fn(line) else {
            continue;
        };
        let indent = &line[..line.len() - line.trim_start().len()];
        let close = format!("{indent}}}");
        if let Some(len) = lines[i..].iter().position(|l| *l == close) {
            out.push((name, len + 1));
        }
    }
    out
}

/// What `check` finds in each source file's code before its tests, each
/// finding prefixed with the file's path.
fn findings(check: impl Fn(&[&str]) -> Vec<String>) -> Vec<String> {
    sources()
        .iter()
        .flat_map(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            check(&before_tests(&text))
                .into_iter()
                .map(|f| format!("{}: {f}", path.display()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn no_file_has_more_than_500_lines_of_code_before_its_tests() {
    let too_long = findings(|lines| {
        let n = code_lines(lines);
        (n > MAX_FILE_CODE)
            .then(|| format!("{n} lines of code"))
            .into_iter()
            .collect()
    });
    assert!(too_long.is_empty(), "split these files: {too_long:#?}");
}

#[test]
fn no_function_is_longer_than_100_lines() {
    let too_long = findings(|lines| {
        functions(lines)
            .into_iter()
            .filter(|(_, n)| *n > MAX_FN_LINES)
            .map(|(name, n)| format!("fn {name}: {n} lines"))
            .collect()
    });
    assert!(too_long.is_empty(), "split these functions: {too_long:#?}");
}

#[test]
fn the_counters_count_what_they_say() {
    let text = "//! doc\n\nfn short() {\n    one();\n}\n\n    pub async fn indented(\n        a: u8,\n    ) {\n        two();\n    }\nfn decl();\n#[cfg(test)]\nmod tests {}\n";
    let lines = before_tests(text);
    assert_eq!(code_lines(&lines), 9);
    assert_eq!(functions(&lines), vec![("short", 3), ("indented", 5)]);
}

/// `use crate::X` lines of a file (also inside `use crate::{X, Y}`).
fn crate_imports(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    for line in before_tests(&text) {
        let Some(rest) = line.trim_start().strip_prefix("use crate::") else {
            continue;
        };
        let rest = rest.trim_end_matches(';');
        match rest.strip_prefix('{') {
            Some(list) => out.extend(
                list.trim_end_matches('}')
                    .split(',')
                    .map(|s| s.trim().split("::").next().unwrap_or("").to_string()),
            ),
            None => out.push(rest.split("::").next().unwrap_or("").to_string()),
        }
    }
    out
}

#[test]
fn the_pushgateway_sink_knows_neither_the_core_the_inputs_nor_kubernetes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sinks/pushgateway");
    let files: Vec<PathBuf> = sources()
        .into_iter()
        .filter(|p| p.starts_with(&dir))
        .collect();
    assert!(
        files.iter().any(|p| p.ends_with("mod.rs")),
        "the Pushgateway sink lives in {}",
        dir.display()
    );
    for file in files {
        let imports = crate_imports(&file);
        for forbidden in ["dora", "inputs", "kubernetes"] {
            assert!(
                !imports.iter().any(|i| i == forbidden),
                "{} imports crate::{forbidden}: {imports:?}",
                file.display()
            );
        }
    }
}
