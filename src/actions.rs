//! The GitHub Actions runtime: workflow commands on stdout, the step outputs
//! file (`GITHUB_OUTPUT`) and the job summary file (`GITHUB_STEP_SUMMARY`).
//! Knows nothing about DORA.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Whether `c` must never reach a log line or a Markdown line as itself:
/// the runner ends a workflow-command line at CR as well as LF; NEL, U+2028
/// and U+2029 end a line for editors, browsers and some log viewers; NUL,
/// ESC (terminal escapes can hide or rewrite text in the log) and every
/// other control character have no business in what people read. Tab stays.
pub fn is_unsafe_char(c: char) -> bool {
    (c.is_control() && c != '\t') || matches!(c, '\u{2028}' | '\u{2029}')
}

/// `c` as visible text: `\r`, `\n`, `\0`, `\u{2028}`.
fn push_visible(out: &mut String, c: char) {
    match c {
        '\r' => out.push_str("\\r"),
        '\n' => out.push_str("\\n"),
        '\0' => out.push_str("\\0"),
        c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
    }
}

/// `text` as one line: every character [`is_unsafe_char`] finds shown as a
/// visible escape. The one neutraliser for values from a payload or an
/// answer: log lines ([`log_text`]), annotations ([`escape_data`]) and the
/// summary (`report`) all build on it.
pub fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(is_unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe_char(c) {
            push_visible(&mut out, c);
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The runner's legacy command marker (`##[error]…`), read anywhere on a
/// line, not only at its start as `::` commands are.
pub const LEGACY_COMMAND: &str = "##[";

/// Longest line [`log_text`] shows, in characters; the rest is counted.
pub const MAX_LINE: usize = 2_000;

/// Most of the log a [`print()`] may take, in bytes.
pub const MAX_PRINT: usize = 1024 * 1024;

/// Text that holds outside values (the dry-run exposition, a local run's
/// summary), made safe to show in the log: lines split at LF only, each made
/// [`one_line`] and cut to [`MAX_LINE`] characters, and a line the runner
/// would read as a workflow command (`::` after leading white space, or the
/// legacy `##[` anywhere) defused with a backslash: only the action's own
/// commands ([`error`], [`mask`], …) start with `::`. At most `max_bytes`
/// (or one line), with a last line saying how much was left out.
pub fn log_text(text: &str, max_bytes: usize) -> String {
    let mut out = String::new();
    let mut lines = text.split('\n');
    for (shown, line) in lines.by_ref().enumerate() {
        let mut line = cut(&one_line(line), MAX_LINE).replace(LEGACY_COMMAND, "##\\[");
        if line.trim_start().starts_with("::") {
            line.insert(0, '\\');
        }
        if shown > 0 && out.len() + line.len() + 1 > max_bytes {
            let rest = 1 + lines.count();
            out.push_str(&format!("\n… {rest} more lines not shown"));
            return out;
        }
        if shown > 0 {
            out.push('\n');
        }
        out.push_str(&line);
    }
    out
}

/// Prints `text` to stdout as [`log_text`] shows it (masked values replaced,
/// at most [`MAX_PRINT`] bytes).
pub fn print(text: &str) {
    println!("{}", log_text(&redact(text), MAX_PRINT));
}

/// The diagnostics writer (`tracing` to stderr): the runner reads workflow
/// commands from stderr too, and a logged error can quote an answer's body,
/// so each line written goes through [`log_text`] with masked values
/// replaced, as stdout does through [`print()`].
pub struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let line = format!("{}\n", log_text(&redact(text), MAX_LINE * 4));
        std::io::stderr().write_all(line.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Escapes a workflow command's message: `%`, CR and LF would otherwise end
/// or corrupt the command. The other line separators (NEL, U+2028, U+2029)
/// become a line break of the message too (`%0A`); any other control
/// character is shown as a visible escape ([`one_line`]).
pub fn escape_data(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' | '\u{85}' | '\u{2028}' | '\u{2029}' => out.push_str("%0A"),
            c if is_unsafe_char(c) => push_visible(&mut out, c),
            c => out.push(c),
        }
    }
    out
}

/// Longest annotation message, in characters: a bad payload value can be
/// megabytes, and an annotation is for reading.
const MAX_MESSAGE: usize = 2_000;

/// `msg` without masked values, cut to [`MAX_MESSAGE`] characters, saying
/// how much was left out.
fn bounded(msg: &str) -> String {
    cut(&redact(msg), MAX_MESSAGE)
}

/// `::error::message` — fails the step visibly in the log and the run's annotations.
pub fn error(msg: &str) {
    println!("::error::{}", escape_data(&bounded(msg)));
}

/// `::warning::message`.
pub fn warning(msg: &str) {
    println!("::warning::{}", escape_data(&bounded(msg)));
}

/// `::notice::message`.
pub fn notice(msg: &str) {
    println!("::notice::{}", escape_data(&bounded(msg)));
}

/// `::add-mask::value` — from here on the runner replaces the value with
/// `***` in the log. Called before anything could print the secret.
pub fn mask(secret: &str) {
    // A multi-line secret is masked line by line; the runner matches per line.
    for line in secret.lines().filter(|l| !l.trim().is_empty()) {
        // Only what the runner unescapes: it must mask exactly this text.
        let line_escaped = line
            .replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A");
        println!("::add-mask::{line_escaped}");
        MASKED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line.to_string());
    }
}

/// Every value given to [`mask`]: annotations replace them with `***`
/// themselves before cutting a long message, so a cut never leaves part of a
/// secret that the runner's whole-value masking would miss.
static MASKED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// `msg` with every masked value replaced by `***`: the runner masks its
/// log, and everything else the action writes (the summary, the outputs)
/// goes through this.
pub fn redact(msg: &str) -> String {
    let masked = MASKED.lock().unwrap_or_else(|e| e.into_inner());
    masked
        .iter()
        .filter(|m| !m.is_empty())
        .fold(msg.to_string(), |text, m| text.replace(m.as_str(), "***"))
}

/// Where step outputs and the summary go: the runner's files, or stdout for a local run.
#[derive(Debug, Clone, Default)]
pub struct RunnerFiles {
    pub output: Option<PathBuf>,
    pub summary: Option<PathBuf>,
}

impl RunnerFiles {
    /// Writes outputs in the `name<<DELIMITER` form, which is safe for any
    /// value; the delimiter is random and checked against every value. Each
    /// value is cut to [`MAX_OUTPUT`] characters and has masked values
    /// replaced: outputs are numbers and flags, so a longer one is a bug.
    pub fn write_outputs(&self, outputs: &[(String, String)]) -> Result<()> {
        let outputs: Vec<(String, String)> = outputs
            .iter()
            .map(|(name, value)| (name.clone(), cut(&redact(value), MAX_OUTPUT)))
            .collect();
        let mut text = String::new();
        for (name, value) in &outputs {
            let delimiter = loop {
                let d = random_delimiter();
                if !value.contains(&d) {
                    break d;
                }
            };
            text.push_str(&format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"));
        }
        match &self.output {
            Some(path) => append(path, &text),
            None => {
                println!("Outputs:");
                for (name, value) in &outputs {
                    print(&format!("  {name}={value}"));
                }
                Ok(())
            }
        }
    }

    /// Appends the job summary (Markdown), masked values replaced and cut
    /// to [`MAX_SUMMARY`] bytes with a note: GitHub drops a step's summary
    /// over 1 MiB entirely. `report` keeps its summaries well under that;
    /// this is the backstop for every writer.
    pub fn write_summary(&self, markdown: &str) -> Result<()> {
        let markdown = bound_summary(&redact(markdown));
        match &self.summary {
            Some(path) => append(path, &markdown),
            None => {
                print(&markdown);
                Ok(())
            }
        }
    }
}

/// Longest output value, in characters.
pub const MAX_OUTPUT: usize = 4_096;

/// Longest job summary this action writes, in bytes: GitHub keeps at most
/// 1 MiB of a step's summary and drops a larger one whole.
pub const MAX_SUMMARY: usize = 1_000_000;

/// `text` cut to `max` characters, with an ellipsis and how much was left out.
pub fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((i, _)) => format!(
            "{}… ({} more characters)",
            &text[..i],
            text[i..].chars().count()
        ),
    }
}

/// `markdown` cut at a line end to fit [`MAX_SUMMARY`] bytes, with a note.
fn bound_summary(markdown: &str) -> String {
    if markdown.len() <= MAX_SUMMARY {
        return markdown.to_string();
    }
    let note = "\n\n> [!NOTE]\n> The rest of this summary was cut: GitHub keeps at most 1 MiB of a step's summary.\n";
    let mut end = MAX_SUMMARY - note.len();
    while !markdown.is_char_boundary(end) {
        end -= 1;
    }
    let end = markdown[..end].rfind('\n').unwrap_or(end);
    format!("{}{note}", &markdown[..end])
}

fn random_delimiter() -> String {
    let mut bytes = [0u8; 16];
    // The OS random source cannot fail on Linux after boot; fall back to the clock regardless.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes = nanos.to_le_bytes();
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("ghadelimiter_{hex}")
}

fn append(path: &Path, text: &str) -> Result<()> {
    let err = |e: std::io::Error| Error::Runner {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(err)?;
    file.write_all(text.as_bytes()).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_after_masked_values_are_replaced() {
        mask("s3cr3t-value-for-the-cut-test");
        let long = format!(
            "{}s3cr3t-value-for-the-cut-test{}",
            "x".repeat(1_990),
            "y".repeat(5_000)
        );
        let out = bounded(&long);
        assert!(
            !out.contains("s3cr3t"),
            "no part of the secret survives the cut"
        );
        assert!(out.starts_with(&"x".repeat(1_990)));
        assert!(
            out.ends_with("… (4993 more characters)"),
            "{}",
            &out[out.len() - 40..]
        );
        assert_eq!(bounded("short"), "short");
        assert_eq!(bounded("a s3cr3t-value-for-the-cut-test b"), "a *** b");
    }

    #[test]
    fn command_messages_are_escaped() {
        assert_eq!(escape_data("50% done\r\nnext"), "50%25 done%0D%0Anext");
        assert_eq!(
            escape_data("a\u{2028}b\u{2029}c\u{85}d"),
            "a%0Ab%0Ac%0Ad",
            "every line separator is a line break of the message, never of the log"
        );
        assert_eq!(
            escape_data("a\u{0}b\u{1b}[31mc\u{7f}"),
            "a\\0b\\u{1b}[31mc\\u{7f}"
        );
        assert_eq!(escape_data("tab\tkept é 🚀"), "tab\tkept é 🚀");
    }

    #[test]
    fn log_text_never_starts_a_command() {
        let text = "a{w=\"\r::error::x\"} 1\n::warning::y\n  ::notice::z\nq ##[error]v\nn\u{2028}::e\u{85}\u{0}";
        let out = log_text(text, MAX_PRINT);
        assert_eq!(
            out,
            "a{w=\"\\r::error::x\"} 1\n\\::warning::y\n\\  ::notice::z\nq ##\\[error]v\nn\\u{2028}::e\\u{85}\\0"
        );
        for line in out.split(['\r', '\n']) {
            assert!(!line.trim_start().starts_with("::"), "{line}");
        }
    }

    #[test]
    fn log_text_is_bounded() {
        let long = "x".repeat(10_000);
        let out = log_text(&long, MAX_PRINT);
        assert!(
            out.ends_with("… (8000 more characters)"),
            "a long line is cut"
        );
        let many = "y\n".repeat(100_000);
        let out = log_text(&many, 1_000);
        assert!(out.len() <= 1_100, "{}", out.len());
        assert!(
            out.ends_with("… 99501 more lines not shown"),
            "{}",
            &out[out.len() - 40..]
        );
    }

    #[test]
    fn the_summary_and_outputs_are_bounded_and_masked() {
        mask("summary-secret-7f3a");
        let dir = tempfile::tempdir().unwrap();
        let files = RunnerFiles {
            output: Some(dir.path().join("out")),
            summary: Some(dir.path().join("summary")),
        };
        let line = format!("{}\n", "z".repeat(99));
        files
            .write_summary(&format!("summary-secret-7f3a\n{}", line.repeat(30_000)))
            .unwrap();
        let summary = std::fs::read_to_string(dir.path().join("summary")).unwrap();
        assert!(summary.len() <= MAX_SUMMARY && summary.len() > MAX_SUMMARY - 200);
        assert!(summary.starts_with("***\n"));
        assert!(summary.ends_with("GitHub keeps at most 1 MiB of a step's summary.\n"));
        files
            .write_outputs(&[("x".into(), "v".repeat(10_000))])
            .unwrap();
        let out = std::fs::read_to_string(dir.path().join("out")).unwrap();
        assert!(out.len() < MAX_OUTPUT + 200 && out.contains("… (5904 more characters)"));
    }

    #[test]
    fn outputs_use_a_random_delimiter_safe_for_multiline_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        std::fs::write(&path, "earlier=kept\n").unwrap();
        let files = RunnerFiles {
            output: Some(path.clone()),
            summary: None,
        };
        files
            .write_outputs(&[
                ("events".into(), "2".into()),
                ("multi".into(), "a\nb".into()),
            ])
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "earlier=kept");
        let (name, delim) = lines[1].split_once("<<").unwrap();
        assert_eq!(name, "events");
        assert!(delim.starts_with("ghadelimiter_") && delim.len() > 20);
        assert_eq!(&lines[2..4], &["2", delim]);
        let (_, delim2) = lines[4].split_once("<<").unwrap();
        assert_ne!(delim, delim2, "each output gets its own random delimiter");
        assert_eq!(&lines[5..8], &["a", "b", delim2]);
    }
}
