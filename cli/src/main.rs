//! `isec`: break-glass and operations tool over `isec-core`.

mod demo;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Client-side envelope encryption for object storage.
#[derive(Parser)]
#[command(name = "isec", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Walk through the main job on generated data: encrypt, inspect, ranged decrypt,
    /// copy decision, rewrap, tamper.
    Demo {
        /// Plaintext size in bytes.
        #[arg(long, default_value_t = 3 * 1024 * 1024 + 17)]
        size: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo { size } => demo::run(size),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("isec: {e}");
            ExitCode::from(1)
        }
    }
}
