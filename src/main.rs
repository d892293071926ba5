//! Entry point: arguments, the panic guard and the runtime; everything else is in the library.

use std::io::Write;
use std::process::ExitCode;

/// `--help` before the input list, which comes from the input table
/// ([`dora_action::inputs::INPUTS`]), so it cannot miss an input.
const HELP_HEAD: &str = "\
dora-action: delivery signals as DORA metrics in Prometheus

A GitHub container action. It reads its inputs from INPUT_* variables and the
event from GITHUB_EVENT_NAME / GITHUB_EVENT_PATH, the way the runner passes
them; records the triggering deployment (event mode), the deploy workflows'
history from the REST API (workflows mode), or Flux revisions and Flagger
canary outcomes (cluster mode) in a Pushgateway, one group per event, reached
by URL or inside an EKS cluster through the API server, and/or in a durable
store through Prometheus remote-write (Amazon Managed Service for Prometheus,
Mimir, Thanos, VictoriaMetrics, Prometheus); and writes step outputs
(GITHUB_OUTPUT) and a job summary (GITHUB_STEP_SUMMARY), or prints both when
those are unset.

Usage: dora-action [--help | --version]

Run locally on an example event, without any server:
  env GITHUB_EVENT_NAME=workflow_run GITHUB_EVENT_PATH=examples/workflow_run.json \\
  INPUT_DRY-RUN=true dora-action

Inputs (INPUT_<NAME>, hyphens kept; see action.yml and README.md):
";

const HELP_TAIL: &str = "
Exit status: 0 recorded or skipped, 1 an error (one ::error:: line says which).
";

/// The whole `--help` text.
fn help() -> String {
    format!(
        "{HELP_HEAD}{}{HELP_TAIL}",
        dora_action::inputs::help_inputs()
    )
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => {}
        Some("-h" | "--help") => {
            print!("{}", help());
            return ExitCode::SUCCESS;
        }
        Some("-V" | "--version") => {
            println!("dora-action {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            println!(
                "::error::unexpected argument `{other}`: dora-action takes its inputs from INPUT_* variables (see --help)"
            );
            return ExitCode::from(1);
        }
    }
    // A panic is a bug, but the user still gets one `::error::` line and exit 1, not a bare backtrace.
    std::panic::set_hook(Box::new(|info| {
        let line = format!(
            "::error::dora-action crashed (a bug, please report it): {}\n",
            dora_action::actions::escape_data(&info.to_string())
        );
        // Never `println!` here: when stdout is what failed (a closed pipe,
        // a full disk), a panic inside the hook aborts the process with a
        // bare message. The runner reads workflow commands from stderr too.
        let mut stdout = std::io::stdout().lock();
        if stdout
            .write_all(line.as_bytes())
            .and_then(|()| stdout.flush())
            .is_err()
        {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }));
    let vars: Vec<(String, String)> = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect();
    init_logging(&vars);
    let outcome = std::panic::catch_unwind(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|rt| rt.block_on(dora_action::run::main(vars)))
    });
    match outcome {
        Ok(Ok(code)) => ExitCode::from(code),
        Ok(Err(e)) => {
            println!("::error::cannot start the async runtime: {e}");
            ExitCode::from(1)
        }
        Err(_) => ExitCode::from(1),
    }
}

/// Diagnostics go to stderr, terse by default; `RUNNER_DEBUG=1` (the
/// runner's "debug logging" switch) or `RUST_LOG` turns on more.
fn init_logging(vars: &[(String, String)]) {
    let debug = vars.iter().any(|(k, v)| k == "RUNNER_DEBUG" && v == "1");
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(if debug { "dora_action=debug" } else { "warn" })
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| dora_action::actions::LogWriter)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .init();
}
