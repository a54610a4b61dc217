//! `sandbot component new`: what `wasm-tools component new --adapt` does, built in,
//! so plugin authors need no extra tool.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::sandbox::componentize;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The core module (`target/wasm32-wasip1/release/NAME.wasm`).
    input: PathBuf,
    /// Where to write the component.
    #[arg(short, long)]
    output: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let bytes =
        std::fs::read(&args.input).with_context(|| format!("reading {}", args.input.display()))?;
    let component =
        componentize(&bytes).with_context(|| format!("componentizing {}", args.input.display()))?;
    std::fs::write(&args.output, component)
        .with_context(|| format!("writing {}", args.output.display()))?;
    Ok(ExitCode::SUCCESS)
}
