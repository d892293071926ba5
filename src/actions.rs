//! The GitHub Actions runtime: workflow commands on stdout, the step outputs
//! file (`GITHUB_OUTPUT`) and the job summary file (`GITHUB_STEP_SUMMARY`).
//! Knows nothing about DORA.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Escapes a workflow command's message: `%`, CR and LF would otherwise end
/// or corrupt the command.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Longest annotation message, in characters: a bad payload value can be
/// megabytes, and an annotation is for reading.
const MAX_MESSAGE: usize = 2_000;

/// `msg` without masked values, cut to [`MAX_MESSAGE`] characters, saying
/// how much was left out.
fn bounded(msg: &str) -> String {
    let msg = redact(msg);
    match msg.char_indices().nth(MAX_MESSAGE) {
        None => msg,
        Some((i, _)) => format!(
            "{}… ({} more characters)",
            &msg[..i],
            msg[i..].chars().count()
        ),
    }
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
        println!("::add-mask::{}", escape_data(line));
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

/// `msg` with every masked value replaced by `***`.
fn redact(msg: &str) -> String {
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
    /// value; the delimiter is random and checked against every value.
    pub fn write_outputs(&self, outputs: &[(String, String)]) -> Result<()> {
        let mut text = String::new();
        for (name, value) in outputs {
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
                for (name, value) in outputs {
                    println!("  {name}={value}");
                }
                Ok(())
            }
        }
    }

    /// Appends the job summary (Markdown).
    pub fn write_summary(&self, markdown: &str) -> Result<()> {
        match &self.summary {
            Some(path) => append(path, markdown),
            None => {
                println!("{markdown}");
                Ok(())
            }
        }
    }
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
