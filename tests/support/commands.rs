//! What the runner would read as a workflow command in a run's stdout, and
//! what a job summary is as GitHub reads it: the checks that outside values
//! (payload fields, answers) never inject a command or break the Markdown.

/// Pieces of `stdout` that read as a workflow command the action did not
/// write. The runner ends a line at CR as well as LF (and a log viewer may
/// at NEL, U+2028, U+2029), trims leading white space and takes `::` as a
/// command; the legacy `##[` form is taken anywhere in a line. The action's
/// own commands are whole LF-ended lines starting with `::add-mask::`,
/// `::error::`, `::warning::`, `::notice::` (the runner parses such a line
/// as that command first, so a `##[` inside its message is text); every
/// other piece that starts with `::`, or holds `##[`, is returned.
pub fn foreign_commands(stdout: &str) -> Vec<String> {
    const OWN: [&str; 4] = ["::add-mask::", "::error::", "::warning::", "::notice::"];
    let mut foreign = Vec::new();
    for line in stdout.split('\n') {
        let pieces: Vec<&str> = line
            .split(['\r', '\u{85}', '\u{2028}', '\u{2029}'])
            .collect();
        for (i, piece) in pieces.iter().enumerate() {
            let trimmed = piece.trim_start();
            let own = i == 0 && pieces.len() == 1 && OWN.iter().any(|c| piece.starts_with(c));
            if !own && (trimmed.starts_with("::") || piece.contains("##[")) {
                foreign.push(piece.chars().take(200).collect());
            }
        }
    }
    foreign
}

/// A job summary as GitHub reads it (CommonMark with GFM tables).
#[derive(Debug, Default)]
pub struct Markdown {
    /// Cells of each table row, header rows included, in order.
    pub rows: Vec<usize>,
    /// Raw HTML, block or inline.
    pub html: Vec<String>,
    /// The text of each code block.
    pub code: Vec<String>,
    /// Link destinations.
    pub links: Vec<String>,
}

/// Parses `md` with pulldown-cmark, a CommonMark parser with GitHub's table extension.
pub fn parse_markdown(md: &str) -> Markdown {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    let mut p = Markdown::default();
    let (mut cells, mut in_code) = (0, false);
    for event in Parser::new_ext(md, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::TableRow | Tag::TableHead) => cells = 0,
            Event::Start(Tag::TableCell) => cells += 1,
            Event::End(TagEnd::TableRow | TagEnd::TableHead) => p.rows.push(cells),
            Event::Html(h) | Event::InlineHtml(h) => p.html.push(h.to_string()),
            Event::Start(Tag::CodeBlock(_)) => {
                in_code = true;
                p.code.push(String::new());
            }
            Event::End(TagEnd::CodeBlock) => in_code = false,
            Event::Text(t) if in_code => p.code.last_mut().unwrap().push_str(&t),
            Event::Start(Tag::Link { dest_url, .. }) => p.links.push(dest_url.to_string()),
            _ => {}
        }
    }
    p
}

/// The raw HTML the action itself writes: the collapsed dry-run exposition.
pub const OWN_HTML: [&str; 2] = [
    "<details><summary>Exposition that would be pushed</summary>\n",
    "</details>\n",
];
