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

/// `::error::message` — fails the step visibly in the log and the run's annotations.
pub fn error(msg: &str) {
    println!("::error::{}", escape_data(msg));
}

/// `::warning::message`.
pub fn warning(msg: &str) {
    println!("::warning::{}", escape_data(msg));
}

/// `::notice::message`.
pub fn notice(msg: &str) {
    println!("::notice::{}", escape_data(msg));
}

/// `::add-mask::value` — from here on the runner replaces the value with
/// `***` in the log. Called before anything could print the secret.
pub fn mask(secret: &str) {
    // A multi-line secret is masked line by line; the runner matches per line.
    for line in secret.lines().filter(|l| !l.trim().is_empty()) {
        println!("::add-mask::{}", escape_data(line));
    }
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
