//! `sandbot action run`: one invocation, one JSON document on stdout.
//! Exit 0 when the action succeeded, 1 when it failed, 2 on a usage error.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::Value;

use std::sync::Arc;

use super::limit_args::LimitArgs;
use crate::sandbox::{ActionModule, Invocation, Sandbox, SandboxConfig};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("action").required(true).args(["plugin", "js", "api"])))]
pub struct Args {
    /// A plugin: a component, or a wasm32-wasip1 core module built with the SDK.
    #[arg(long, value_name = "FILE.wasm")]
    plugin: Option<PathBuf>,
    /// A JavaScript code action (Chatlayer's code-editor API).
    #[arg(long, value_name = "FILE.js")]
    js: Option<PathBuf>,
    /// An API action: its configuration as JSON (method, url, query/headers/body
    /// rows typed text/variable/dialogstate, auth, timeoutMs).
    #[arg(long, value_name = "CONFIG.json")]
    api: Option<PathBuf>,
    /// The plugin's input, as JSON.
    #[arg(long, value_name = "JSON", default_value = "null", conflicts_with_all = ["js", "api"])]
    input: String,
    /// The code action's `args`, as JSON.
    #[arg(long, value_name = "JSON", default_value = "{}", conflicts_with_all = ["plugin", "api"])]
    args: String,
    /// The conversation's session, as JSON.
    #[arg(long, value_name = "JSON", default_value = "{}")]
    session: String,
    #[command(flatten)]
    limits: LimitArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let session = parse_json("--session", &args.session)?;
    if !session.is_object() {
        bail!("--session must be a JSON object");
    }
    let limits = args.limits.to_limits()?;
    let action = Action::from_args(&args)?;

    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let outcome = runtime.block_on(async {
        let sandbox = Sandbox::new(SandboxConfig {
            max_instances: 4,
            ..SandboxConfig::default()
        })?;
        let (module, invocation) = action.prepare(&sandbox)?;
        let invocation = invocation.with_session(session);
        anyhow::Ok(sandbox.invoke(&module, invocation, &limits).await)
    })?;
    println!("{}", serde_json::to_string_pretty(&outcome)?);
    Ok(if outcome.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// What to run, read and checked before the sandbox starts.
enum Action {
    Plugin {
        path: PathBuf,
        bytes: Vec<u8>,
        input: Value,
    },
    Js {
        script: String,
        args: Value,
    },
    Api {
        config: Value,
    },
}

impl Action {
    fn from_args(args: &Args) -> anyhow::Result<Self> {
        if let Some(path) = &args.plugin {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let input = parse_json("--input", &args.input)?;
            return Ok(Action::Plugin {
                path: path.clone(),
                bytes,
                input,
            });
        }
        if let Some(path) = &args.api {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let config = serde_json::from_str(&text)
                .with_context(|| format!("{} is not valid JSON", path.display()))?;
            return Ok(Action::Api { config });
        }
        let path = args
            .js
            .as_ref()
            .expect("clap requires --plugin, --js or --api");
        let script =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let js_args = parse_json("--args", &args.args)?;
        Ok(Action::Js {
            script,
            args: js_args,
        })
    }

    fn prepare(self, sandbox: &Sandbox) -> anyhow::Result<(Arc<ActionModule>, Invocation)> {
        Ok(match self {
            Action::Plugin { path, bytes, input } => {
                let module = sandbox
                    .load(&bytes)
                    .with_context(|| format!("loading {}", path.display()))?;
                (module, Invocation::new(input))
            }
            Action::Js { script, args } => (sandbox.js_runner()?, Invocation::js(&script, args)),
            Action::Api { config } => (sandbox.api_action()?, Invocation::new(config)),
        })
    }
}

fn parse_json(flag: &str, text: &str) -> anyhow::Result<Value> {
    serde_json::from_str(text).with_context(|| format!("{flag} is not valid JSON"))
}
