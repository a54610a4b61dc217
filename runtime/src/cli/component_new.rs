//! `sandbot component new`: what `wasm-tools component new --adapt` does, built in,
//! so plugin authors need no extra tool.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::sandbox::{componentize, preinitialize};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The core module (`target/wasm32-wasip1/release/NAME.wasm`).
    input: PathBuf,
    /// Where to write the component.
    #[arg(short, long)]
    output: PathBuf,
    /// Run the module's `wizer-initialize` export first and snapshot the result
    /// (pre-initialization with wasmtime-wizer).
    #[arg(long)]
    pre_init: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let bytes =
        std::fs::read(&args.input).with_context(|| format!("reading {}", args.input.display()))?;
    let bytes = if args.pre_init {
        let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
        runtime
            .block_on(preinitialize(&bytes))
            .with_context(|| format!("pre-initializing {}", args.input.display()))?
    } else {
        bytes
    };
    let component =
        componentize(&bytes).with_context(|| format!("componentizing {}", args.input.display()))?;
    std::fs::write(&args.output, component)
        .with_context(|| format!("writing {}", args.output.display()))?;
    Ok(ExitCode::SUCCESS)
}
