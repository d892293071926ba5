//! The documentation is checked like code: `docs/inputs-outputs.md` is what
//! `action.yml` generates, every relative link in `README.md` and
//! `docs/*.md` names a file (and a heading) that is there, the README stays
//! a front page of at most 300 lines, and every page of `docs/` links back
//! to it (and is linked from it).
//!
//! `DORA_UPDATE_DOCS=1 cargo test --test docs` rewrites the generated page.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use serde::Deserialize;

/// The page generated from `action.yml`.
const GENERATED: &str = "docs/inputs-outputs.md";

/// The README is a front page: what it is, the two commands, a workflow,
/// the keys, links. The reference is in `docs/`.
const README_MAX_LINES: usize = 300;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: impl AsRef<Path>) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

// ---- action.yml → docs/inputs-outputs.md ----------------------------------

/// A YAML mapping in the file's order (a `BTreeMap` would sort it).
struct InOrder<T>(Vec<(String, T)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for InOrder<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Entries<T> {
            type Value = InOrder<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(InOrder(entries))
            }
        }
        d.deserialize_map(Entries(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct Action {
    inputs: InOrder<Input>,
    outputs: InOrder<Output>,
}

#[derive(Deserialize)]
struct Input {
    description: String,
    #[serde(default)]
    required: bool,
    default: Option<String>,
}

#[derive(Deserialize)]
struct Output {
    description: String,
}

/// What the generated page says before its tables: where the rest is.
const HEADER: &str = "\
[← README](../README.md)

<!-- Generated from action.yml by tests/docs.rs: edit action.yml, then run `DORA_UPDATE_DOCS=1 cargo test --test docs`. -->

# Inputs and outputs

Every input and output that [`action.yml`](../action.yml) declares, with its
description there. How inputs are read and checked (names, booleans, limits):
[Operations](operations.md#inputs-how-they-are-read-and-checked). More on
the inputs of one subject: [Workflows mode](workflows-mode.md),
[Cluster mode](cluster-mode.md), [EKS](eks.md) (`cluster-name`,
`aws-region`, `role-to-assume`, `pushgateway-service`),
[Remote-write](remote-write.md) (`remote-write-*`, `remote-query-url`),
[Incidents and reverts](definitions.md#incidents-and-reverts) (`incident-*`),
[Retention](operations.md#retention-what-a-run-reads-prunes-and-pushes),
[the JSON report](report.md#the-json-report) (`report-file`). How the
outputs are written, and the job summary: [What a run reports](report.md).
";

/// `docs/inputs-outputs.md` as `action_yml` declares its inputs and outputs.
fn inputs_outputs_page(action_yml: &str) -> String {
    let action: Action = serde_saphyr::from_str(action_yml).expect("action.yml parses");
    let mut md = String::from(HEADER);
    md.push_str("\n## Inputs\n\n");
    md.push_str("| input | required | default | description |\n");
    md.push_str("| --- | --- | --- | --- |\n");
    for (name, input) in &action.inputs.0 {
        let required = if input.required { "yes" } else { "no" };
        let default = match input.default.as_deref() {
            None => "—".to_string(),
            Some("") => "empty".to_string(),
            Some(d) => code(d),
        };
        let description = cell(&input.description);
        writeln!(
            md,
            "| {} | {required} | {default} | {description} |",
            code(name)
        )
        .unwrap();
    }
    md.push_str("\n## Outputs\n\n");
    md.push_str("| output | description |\n");
    md.push_str("| --- | --- |\n");
    for (name, output) in &action.outputs.0 {
        writeln!(md, "| {} | {} |", code(name), cell(&output.description)).unwrap();
    }
    md
}

/// `text` as one table cell: a `|` would end the cell, a line break the row.
fn cell(text: &str) -> String {
    text.trim()
        .replace('|', "\\|")
        .replace("\r\n", "\n")
        .replace(['\n', '\r'], "<br>")
}

/// `text` as inline code in a table cell, fenced by more backticks than it holds.
fn code(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if longest > 0 { " " } else { "" };
    cell(&format!("{fence}{pad}{text}{pad}{fence}"))
}

/// Where `have` and `want` first differ, for a failure message.
fn first_difference(have: &str, want: &str) -> String {
    let (mut have_lines, mut want_lines) = (have.lines(), want.lines());
    for n in 1.. {
        match (have_lines.next(), want_lines.next()) {
            (None, None) => break,
            (h, w) if h != w => {
                return format!("line {n}:\n  in the file: {h:?}\n  generated:   {w:?}");
            }
            _ => {}
        }
    }
    "only in the final line break".into()
}

#[test]
fn inputs_outputs_page_is_what_action_yml_generates() {
    let want = inputs_outputs_page(&read("action.yml"));
    let path = root().join(GENERATED);
    if std::env::var_os("DORA_UPDATE_DOCS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{GENERATED} is not what action.yml generates: run `DORA_UPDATE_DOCS=1 cargo test --test docs` \
         and commit it. First difference, {}",
        first_difference(&have, &want)
    );
}

/// The cells of every table row in `md`, as text, header rows included.
fn table_rows(md: &str) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut in_cell = false;
    for event in Parser::new_ext(md, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::TableHead | Tag::TableRow) => rows.push(Vec::new()),
            Event::Start(Tag::TableCell) => {
                in_cell = true;
                rows.last_mut().unwrap().push(String::new());
            }
            Event::End(TagEnd::TableCell) => in_cell = false,
            Event::Text(t) | Event::Code(t) | Event::InlineHtml(t) if in_cell => {
                rows.last_mut().unwrap().last_mut().unwrap().push_str(&t);
            }
            _ => {}
        }
    }
    rows
}

#[test]
fn the_generated_tables_keep_order_defaults_and_odd_descriptions_in_their_cell() {
    let yml = r#"
name: t
inputs:
  zeta:
    description: |-
      first line | with a pipe
      second line
    required: true
    default: "a|b"
  alpha:
    description: plain
    default: ""
  tick:
    description: has a `code` span
    default: "x`y"
outputs:
  out:
    description: "an output | piped"
"#;
    let md = inputs_outputs_page(yml);
    let rows = table_rows(&md);
    assert_eq!(
        rows,
        [
            vec!["input", "required", "default", "description"],
            vec![
                "zeta",
                "yes",
                "a|b",
                "first line | with a pipe<br>second line"
            ],
            vec!["alpha", "no", "empty", "plain"],
            vec!["tick", "no", "x`y", "has a code span"],
            vec!["output", "description"],
            vec!["out", "an output | piped"],
        ],
        "{md}"
    );
    assert!(md.starts_with("[← README](../README.md)\n"), "{md}");
}

#[test]
fn a_stale_generated_page_shows_where_it_differs() {
    let diff = first_difference("a\nb\nc\n", "a\nB\nc\n");
    assert!(diff.starts_with("line 2:"), "{diff}");
    assert!(diff.contains("\"b\"") && diff.contains("\"B\""), "{diff}");
}

// ---- links and headings -----------------------------------------------------

/// The pages whose links are checked: the README and every page of `docs/`,
/// as paths from the repository's root.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![PathBuf::from("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/")
        .map(|e| PathBuf::from("docs").join(e.unwrap().file_name()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

/// Link and image destinations in `md`, as written. A link in a code block
/// or a code span is text, not a link: the parser never makes one there.
fn links(md: &str) -> Vec<String> {
    Parser::new_ext(md, Options::ENABLE_TABLES)
        .filter_map(|event| match event {
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                Some(dest_url.to_string())
            }
            _ => None,
        })
        .collect()
}

/// The text of every heading in `md`, in order (code spans by their text,
/// emphasis without its markers), as GitHub makes anchors from it.
fn headings(md: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for event in Parser::new_ext(md, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::Heading { .. }) => current = Some(String::new()),
            Event::End(TagEnd::Heading(_)) => out.extend(current.take()),
            Event::Text(t) | Event::Code(t) => {
                if let Some(h) = current.as_mut() {
                    h.push_str(&t);
                }
            }
            _ => {}
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case, punctuation and symbols
/// dropped except `-` and `_`, each space a `-`.
fn slug(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of `md`'s headings: a repeated one gets `-1`, `-2`, … as on GitHub.
fn anchors(md: &str) -> BTreeSet<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for heading in headings(md) {
        let base = slug(&heading);
        let mut anchor = base.clone();
        while seen.contains_key(&anchor) {
            let n = seen.get_mut(&base).expect("the base anchor was seen first");
            *n += 1;
            anchor = format!("{base}-{n}");
        }
        seen.insert(anchor, 0);
    }
    seen.into_keys().collect()
}

/// What a link points at.
enum Target {
    Missing,
    /// A file or folder that is not Markdown: no anchors to check.
    File,
    /// A Markdown file, with its text.
    Markdown(String),
}

/// `dest` (a link of the page `from`) as a path from the repository's root,
/// with its `#anchor`; `None` for an external link (not fetched). `Err` when
/// the path climbs out of the repository.
fn resolve(from: &Path, dest: &str) -> Option<Result<(PathBuf, Option<String>), String>> {
    let lower = dest.to_ascii_lowercase();
    if ["http://", "https://", "mailto:"]
        .iter()
        .any(|s| lower.starts_with(s))
    {
        return None;
    }
    let (path, anchor) = match dest.split_once('#') {
        Some((p, a)) => (p, Some(a.to_string())),
        None => (dest, None),
    };
    if path.is_empty() {
        return Some(Ok((from.to_path_buf(), anchor)));
    }
    let joined = match path.strip_prefix('/') {
        Some(from_root) => PathBuf::from(from_root),
        None => from.parent().unwrap_or(Path::new("")).join(path),
    };
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir if out.pop() => {}
            _ => return Some(Err(format!("{dest}: leaves the repository"))),
        }
    }
    Some(Ok((out, anchor)))
}

/// Every relative link of `md` (the page `from`) that does not resolve: the
/// file is not there, or its `#anchor` names no heading of that file.
fn broken_links(from: &Path, md: &str, look: &dyn Fn(&Path) -> Target) -> Vec<String> {
    let mut broken = Vec::new();
    for dest in links(md) {
        let (path, anchor) = match resolve(from, &dest) {
            None => continue,
            Some(Err(why)) => {
                broken.push(why);
                continue;
            }
            Some(Ok(resolved)) => resolved,
        };
        let target = if path == from {
            Target::Markdown(md.to_string())
        } else {
            look(&path)
        };
        match (target, anchor.filter(|a| !a.is_empty())) {
            (Target::Missing, _) => broken.push(format!("{dest}: no file {}", path.display())),
            (Target::File, Some(a)) => broken.push(format!(
                "{dest}: #{a} in {}, which has no headings (not Markdown)",
                path.display()
            )),
            (Target::Markdown(text), Some(a)) if !anchors(&text).contains(&a) => {
                broken.push(format!(
                    "{dest}: {} has no heading whose anchor is #{a} (it has: {})",
                    path.display(),
                    anchors(&text).into_iter().collect::<Vec<_>>().join(", ")
                ))
            }
            _ => {}
        }
    }
    broken
}

/// What `rel` (from the repository's root) is on disk.
fn on_disk(rel: &Path) -> Target {
    let path = root().join(rel);
    if path.is_file() && rel.extension().is_some_and(|x| x == "md") {
        Target::Markdown(std::fs::read_to_string(path).unwrap())
    } else if path.exists() {
        Target::File
    } else {
        Target::Missing
    }
}

#[test]
fn every_relative_link_names_a_file_and_a_heading_that_are_there() {
    let mut broken = Vec::new();
    for page in pages() {
        for why in broken_links(&page, &read(&page), &on_disk) {
            broken.push(format!("{}: {why}", page.display()));
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn anchors_are_made_as_github_makes_them() {
    for (heading, anchor) in [
        ("Try it: two commands", "try-it-two-commands"),
        (
            "EKS: the in-cluster Pushgateway",
            "eks-the-in-cluster-pushgateway",
        ),
        ("What counts (definitions)", "what-counts-definitions"),
        (
            "Retention: what a run reads, prunes and pushes",
            "retention-what-a-run-reads-prunes-and-pushes",
        ),
        ("snake_case and-dash", "snake_case-and-dash"),
        ("← README", "-readme"),
        ("Déjà vu — 2024", "déjà-vu--2024"),
    ] {
        assert_eq!(slug(heading), anchor, "{heading}");
    }
    // Code spans count by their text, emphasis without its markers.
    assert_eq!(headings("## `ref`, not *`branch`*\n"), ["ref, not branch"]);
    let md = "# Notes\n\n## Notes\n\n## Notes\n\n## Other\n";
    assert_eq!(
        anchors(md).into_iter().collect::<Vec<_>>(),
        ["notes", "notes-1", "notes-2", "other"]
    );
}

#[test]
fn a_broken_link_is_found_and_code_and_external_links_are_not_checked() {
    let page = Path::new("docs/page.md");
    let md = "\
# Here

[fine](other.md#real-heading) [fine too](../README.md) [self](#here)
[no file](nope.md) [no heading](other.md#not-a-heading) [gone](#gone)
![no picture](missing.png) [json anchor](data.json#x) [climbs](../../x.md)
[external](https://example.com/nope.md) `[in a span](span.md)`

```md
[in a block](block.md)
```
";
    let look = |p: &Path| match p.to_str().unwrap() {
        "docs/other.md" => Target::Markdown("# Real heading\n".into()),
        "README.md" => Target::Markdown("# R\n".into()),
        "docs/data.json" => Target::File,
        _ => Target::Missing,
    };
    let broken = broken_links(page, md, &look);
    let starts: Vec<&str> = broken
        .iter()
        .map(|b| b.split(':').next().unwrap())
        .collect();
    assert_eq!(
        starts,
        [
            "nope.md",
            "other.md#not-a-heading",
            "#gone",
            "missing.png",
            "data.json#x",
            "../../x.md"
        ],
        "{broken:#?}"
    );
}

// ---- the README as a front page -------------------------------------------

/// Whether `md` is at most `max` lines long.
fn within_lines(md: &str, max: usize) -> bool {
    md.lines().count() <= max
}

#[test]
fn the_readme_is_a_front_page() {
    let readme = read("README.md");
    assert!(
        within_lines(&readme, README_MAX_LINES),
        "README.md has {} lines, more than {README_MAX_LINES}: move the reference into docs/",
        readme.lines().count()
    );
}

#[test]
fn the_line_limit_counts_lines() {
    assert!(within_lines(&"line\n".repeat(300), 300));
    assert!(!within_lines(&"line\n".repeat(301), 300));
}

/// Whether the page `from` starts with a link back to the README: its first
/// paragraph opens with it.
fn starts_with_link_back(from: &Path, md: &str) -> bool {
    let mut events = Parser::new_ext(md, Options::ENABLE_TABLES);
    let first = events.next();
    let second = events.next();
    match (first, second) {
        (Some(Event::Start(Tag::Paragraph)), Some(Event::Start(Tag::Link { dest_url, .. }))) => {
            matches!(resolve(from, &dest_url), Some(Ok((p, _))) if p == Path::new("README.md"))
        }
        _ => false,
    }
}

#[test]
fn every_docs_page_starts_with_a_link_back_to_the_readme() {
    let pages = pages();
    assert!(pages.len() > 5, "{pages:?}");
    let without: Vec<String> = pages
        .iter()
        .filter(|p| p.starts_with("docs"))
        .filter(|p| !starts_with_link_back(p, &read(p)))
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        without.is_empty(),
        "these pages do not start with `[← README](../README.md)`: {without:?}"
    );
}

#[test]
fn the_link_back_must_open_the_page_and_lead_to_the_readme() {
    let page = Path::new("docs/page.md");
    assert!(starts_with_link_back(
        page,
        "[← README](../README.md)\n\n# Page\n"
    ));
    assert!(!starts_with_link_back(
        page,
        "# Page\n\n[← README](../README.md)\n"
    ));
    assert!(!starts_with_link_back(
        page,
        "[← other](other.md)\n\n# Page\n"
    ));
    assert!(!starts_with_link_back(page, "[← README](README.md)\n"));
}

#[test]
fn the_readme_links_to_every_docs_page() {
    let from = Path::new("README.md");
    let linked: BTreeSet<PathBuf> = links(&read(from))
        .iter()
        .filter_map(|d| resolve(from, d)?.ok())
        .map(|(p, _)| p)
        .collect();
    let missing: Vec<String> = pages()
        .into_iter()
        .filter(|p| p.starts_with("docs") && !linked.contains(p))
        .map(|p| p.display().to_string())
        .collect();
    assert!(missing.is_empty(), "README.md does not link to {missing:?}");
}
