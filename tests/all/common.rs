//! What every test needs: the shared sandbox, the committed guest artifacts,
//! limits built from a case's JSON.

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use sandbot::sandbox::{ActionModule, Limits, Sandbox, SandboxConfig};
use sandbot_host_api::egress::EgressPolicy;
use serde::Deserialize;

/// The repository's root folder.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// One sandbox for the whole test binary, like one per process in production.
/// Compiled components are cached under the target folder between runs.
pub static SANDBOX: LazyLock<Sandbox> = LazyLock::new(|| {
    Sandbox::new(SandboxConfig {
        max_instances: 600,
        cache_dir: Some(Path::new(env!("CARGO_TARGET_TMPDIR")).join("component-cache")),
        ..SandboxConfig::default()
    })
    .expect("sandbox")
});

/// A committed guest artifact (`guest-sdk/artifacts/NAME.wasm`), loaded.
pub fn guest(name: &str) -> Arc<ActionModule> {
    let path = repo()
        .join("guest-sdk/artifacts")
        .join(format!("{name}.wasm"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    SANDBOX.load(&bytes).expect("load guest")
}

/// Limits as a case writes them; anything absent keeps the default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseLimits {
    pub fuel: Option<u64>,
    pub memory_mib: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub max_output_bytes: Option<usize>,
    pub max_boundary_bytes: Option<u64>,
    pub max_http_calls: Option<u32>,
    pub max_request_bytes: Option<usize>,
    pub max_response_bytes: Option<usize>,
    pub call_timeout_ms: Option<u64>,
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    #[serde(default)]
    pub allow_nets: Vec<String>,
}

impl CaseLimits {
    pub fn build(&self) -> Limits {
        let defaults = EgressPolicy::default();
        let policy = EgressPolicy {
            allow_hosts: self
                .allow_hosts
                .iter()
                .map(|h| h.parse().unwrap())
                .collect(),
            allow_nets: self.allow_nets.iter().map(|n| n.parse().unwrap()).collect(),
            max_request_bytes: self.max_request_bytes.unwrap_or(defaults.max_request_bytes),
            max_response_bytes: self
                .max_response_bytes
                .unwrap_or(defaults.max_response_bytes),
            call_timeout: self
                .call_timeout_ms
                .map_or(defaults.call_timeout, Duration::from_millis),
            ..defaults
        };
        let mut limits = Limits::with_egress(policy).unwrap();
        if let Some(v) = self.fuel {
            limits.fuel = v;
        }
        if let Some(v) = self.memory_mib {
            limits.memory_bytes = v << 20;
        }
        if let Some(v) = self.timeout_ms {
            limits.timeout = Duration::from_millis(v);
        }
        if let Some(v) = self.max_output_bytes {
            limits.max_output_bytes = v;
        }
        if let Some(v) = self.max_boundary_bytes {
            limits.host.max_boundary_bytes = v;
        }
        if let Some(v) = self.max_http_calls {
            limits.host.max_http_calls = v;
        }
        limits
    }
}

/// Starts `sandbot serve` with the config `yaml`, written as `dir/serve.yaml`
/// (relative paths in it are relative to `dir`).
pub async fn serve_yaml(dir: &std::path::Path, yaml: &str) -> sandbot::serve::Server {
    let path = dir.join("serve.yaml");
    std::fs::write(&path, yaml).unwrap();
    let config = sandbot::serve::ServeConfig::load(&path).unwrap();
    sandbot::serve::Server::start(&config).await.unwrap()
}

/// A one-bot serve config beyond the defaults: lines at the top level
/// (`top`), settings of tenant `one` (`tenant`, as `key: value, `), where the
/// webhook channel `hook` delivers (`hook_url`), and lines under the bot
/// (`bot`, indented four spaces).
#[derive(Default)]
pub struct Setup<'a> {
    pub top: &'a str,
    pub tenant: &'a str,
    pub hook_url: Option<&'a str>,
    pub bot: &'a str,
}

/// `sandbot serve` for the bot folder `bot`: tenant `one` (token
/// `token-one`) owns it, its webhook channel is `hook` (verify token
/// `vt-123`), the data lives in `dir/data`.
pub async fn serve_bot(
    dir: &std::path::Path,
    bot: &std::path::Path,
    s: Setup<'_>,
) -> sandbot::serve::Server {
    let url = s
        .hook_url
        .map(|u| format!("url: \"{u}\", "))
        .unwrap_or_default();
    let yaml = format!(
        "listen: 127.0.0.1:0\ndata: {data}\n{top}tenants:\n  - {{ {tenant}id: one, tokens: [\"{t1}\"] }}\n\
         bots:\n  - folder: {bot}\n    tenant: one\n    channels:\n      webhook: [{{ id: hook, {url}verifyToken: vt-123 }}]\n{more}",
        data = dir.join("data").display(),
        top = s.top,
        tenant = s.tenant,
        t1 = sandbot::serve::config::hash_token("token-one"),
        bot = bot.display(),
        more = s.bot,
    );
    serve_yaml(dir, &yaml).await
}

/// Fetches `/metrics` from `base` (`http://addr`, this machine) and checks
/// that each of `lines` is one of its lines.
pub async fn assert_metrics(base: &str, lines: &[&str]) {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in lines {
        assert!(text.lines().any(|l| l == *line), "no `{line}` in:\n{text}");
    }
}

/// Rate windows are minutes on the clock: waits, when fewer than `need`
/// seconds of the current minute are left, for the next one to start, so
/// that what a test counts falls in one window.
pub async fn inside_one_minute(need: u64) {
    let second = sandbot::store::now_ms() / 1000 % 60;
    if second + need > 60 {
        tokio::time::sleep(std::time::Duration::from_secs(61 - second)).await;
    }
}
