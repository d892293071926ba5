//! Entry point: arguments, the panic guard and the runtime; everything else is in the library.

use std::process::ExitCode;

use dora_action::app;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => {}
        Some("-h" | "--help") => {
            print!("{}", app::help());
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
    std::panic::set_hook(Box::new(|info| app::report_panic(&info.to_string())));
    let vars: Vec<(String, String)> = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect();
    app::init_logging(&vars);
    let outcome = std::panic::catch_unwind(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|rt| rt.block_on(app::main(vars)))
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
