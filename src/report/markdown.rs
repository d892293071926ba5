//! Markdown for outside values: every value a payload or an answer gave is
//! made inert (no HTML, no link, no code span the value opens, no table
//! break) and bounded before the summary shows it.

use reqwest::Url;

use crate::actions;

/// Longest value shown in a table cell, in characters of the value.
pub(super) const MAX_CELL: usize = 200;

/// Longest message shown (a warning, a failure), in characters, as for annotations.
pub(super) const MAX_MESSAGE: usize = 2_000;

/// Longest link target kept; a longer URL is shown as text only.
const MAX_URL: usize = 2_048;

/// A value for a Markdown table cell: at most [`MAX_CELL`] characters, see [`inline`].
pub(super) fn cell(text: &str) -> String {
    inline(text, MAX_CELL)
}

/// A message of the action's (a skip reason, a warning, a failure) for a
/// Markdown paragraph, at most [`MAX_MESSAGE`] characters. The action quotes
/// names and values in backticks, so each closed, non-empty backtick pair
/// becomes a code span (whose text CommonMark takes literally: no HTML, no
/// link, no emphasis; made [`actions::one_line`]), and everything else is
/// [`inline`] text. The spans are split at every backtick, so a quoted value
/// holding backticks can only shift the pairing, never open a span that
/// swallows the rest: each piece is inert either way. A quote holding `##[`
/// (a legacy workflow command anywhere on a line, for the runner reading a
/// local run's printed summary) stays escaped text. Only for paragraphs:
/// a `|` inside a span would still split a table cell.
pub(super) fn message(text: &str) -> String {
    let cut: String = text.chars().take(MAX_MESSAGE).collect();
    let pieces: Vec<&str> = cut.split('`').collect();
    let mut out = String::with_capacity(cut.len() + 16);
    for (i, piece) in pieces.iter().enumerate() {
        let quoted = i % 2 == 1;
        let closed = i + 1 < pieces.len();
        let span = (quoted && closed)
            .then(|| actions::one_line(piece))
            .filter(|s| !s.is_empty() && !s.contains(actions::LEGACY_COMMAND));
        if let Some(span) = span {
            out.push('`');
            out.push_str(&span);
            out.push('`');
            continue;
        }
        if quoted {
            out.push_str("\\`");
        }
        out.push_str(&inline(piece, MAX_MESSAGE));
        if quoted && closed {
            out.push_str("\\`");
        }
    }
    let rest = text.chars().count().saturating_sub(MAX_MESSAGE);
    if rest > 0 {
        out.push_str(&format!("… ({rest} more characters)"));
    }
    out
}

/// Makes an outside value inert inline Markdown: on one line (line breaks
/// and control characters shown as escapes, [`actions::one_line`]), `|`
/// escaped (it would split a table cell), every character that opens an
/// inline construct (code span, emphasis, link, image, heading) backslash-
/// escaped, and `<`, `>`, `&` written as entities so no raw HTML gets
/// through. Cut to `max` characters of the value with an ellipsis.
pub(super) fn inline(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max * 2) + 8);
    let mut chars = text.chars();
    for c in chars.by_ref().take(max) {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '|' | '`' | '*' | '_' | '~' | '[' | ']' | '(' | ')' | '!' | '#' => {
                out.push('\\');
                out.push(c);
            }
            c if actions::is_unsafe_char(c) => {
                // `\r`, `\u{2028}`: the escape's backslash must stay a backslash.
                out.push('\\');
                out.push_str(&actions::one_line(&c.to_string()));
            }
            c => out.push(c),
        }
    }
    let rest = chars.count();
    if rest > 0 {
        out.push_str(&format!("… ({rest} more characters)"));
    }
    out
}

/// Whether `name` is a GitHub `owner/repository` name, safe in a link path.
pub(super) fn is_repository(name: &str) -> bool {
    let ok = |part: &str| {
        !part.is_empty()
            && part != "."
            && part != ".."
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    matches!(name.split_once('/'), Some((owner, repo)) if ok(owner) && ok(repo))
}

/// `[text](url)` when `url` is a plain http(s) URL, else `text` alone: a
/// payload's URL may be anything, and a `javascript:` link or one that
/// breaks out of the table must not reach the summary. `text` is Markdown
/// already made inert by the caller.
pub(super) fn link(text: &str, url: &str) -> String {
    match link_target(url) {
        Some(target) => format!("[{text}]({target})"),
        None => text.to_string(),
    }
}

/// `url` as a Markdown link destination: http or https with a host, no
/// credentials, at most [`MAX_URL`] long, and every character that could end
/// the destination, the link or the table cell percent-encoded.
pub(super) fn link_target(url: &str) -> Option<String> {
    if url.len() > MAX_URL || url.chars().any(actions::is_unsafe_char) {
        return None;
    }
    let mut url = Url::parse(url).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return None;
    }
    let _ = url.set_password(None);
    let _ = url.set_username("");
    let mut out = String::with_capacity(url.as_str().len());
    for c in url.as_str().chars() {
        match c {
            '(' | ')' | '[' | ']' | '|' | '<' | '>' | '`' | '"' | '\\' | ' ' => {
                out.push_str(&format!("%{:02X}", c as u32));
            }
            c => out.push(c),
        }
    }
    Some(out)
}

/// A fenced code block around `text`: the fence is longer than any run of
/// backticks in it, so no line of `text` can close the block.
pub(super) fn code_block(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat((longest + 1).max(3));
    let newline = if text.ends_with('\n') { "" } else { "\n" };
    format!("{fence}text\n{text}{newline}{fence}\n")
}
