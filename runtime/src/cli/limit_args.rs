//! The sandbox limit flags shared by `action run`, `chat` and `serve`.

use std::time::Duration;

use anyhow::bail;
use ipnet::IpNet;
use sandbot_host_api::egress::{EgressPolicy, HostRule};

use crate::sandbox::{Limits, SandboxConfig};

/// Also a tenant's `limits` in `sandbot serve`'s configuration (camelCase keys).
#[derive(Debug, Clone, Default, clap::Args, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LimitArgs {
    /// Fuel budget per action.
    #[arg(long, value_name = "N")]
    pub fuel: Option<u64>,
    /// Memory limit per action, in MiB.
    #[arg(long, value_name = "N")]
    pub memory_mib: Option<u64>,
    /// Wall-clock deadline per action, in milliseconds.
    #[arg(long, value_name = "N")]
    pub timeout_ms: Option<u64>,
    /// Host actions may call: `api.example.com`, `*.example.com`, `host:8443`,
    /// `http://10.0.0.5:8080` (a scheme of `http://` allows plain HTTP). Repeatable.
    #[arg(long = "allow-host", value_name = "HOST[:PORT]")]
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    /// Private network actions may reach (`10.1.2.0/24`, `127.0.0.1/32`). Repeatable.
    #[arg(long = "allow-net", value_name = "CIDR")]
    #[serde(default)]
    pub allow_nets: Vec<String>,
    /// HTTP calls allowed per action.
    #[arg(long, value_name = "N")]
    pub max_http_calls: Option<u32>,
    /// Largest action output, in bytes.
    #[arg(long, value_name = "N")]
    pub max_output_bytes: Option<usize>,
}

impl LimitArgs {
    /// The defaults with these flags applied.
    pub fn to_limits(&self) -> anyhow::Result<Limits> {
        let allow_hosts = self
            .allow_hosts
            .iter()
            .map(|h| h.parse::<HostRule>().map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let allow_nets = self
            .allow_nets
            .iter()
            .map(|n| parse_net(n))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut limits = Limits::with_egress(EgressPolicy {
            allow_hosts,
            allow_nets,
            ..EgressPolicy::default()
        })?;
        if let Some(fuel) = self.fuel {
            limits.fuel = fuel;
        }
        if let Some(mib) = self.memory_mib {
            let max = SandboxConfig::default().max_memory_bytes >> 20;
            if mib == 0 || mib > max {
                bail!("--memory-mib must be between 1 and {max}");
            }
            limits.memory_bytes = mib << 20;
        }
        if let Some(ms) = self.timeout_ms {
            limits.timeout = Duration::from_millis(ms);
        }
        if let Some(n) = self.max_http_calls {
            limits.host.max_http_calls = n;
        }
        if let Some(n) = self.max_output_bytes {
            limits.max_output_bytes = n;
        }
        Ok(limits)
    }
}

/// A CIDR, or a bare address meaning just that address.
pub fn parse_net(text: &str) -> anyhow::Result<IpNet> {
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net);
    }
    match text.parse::<std::net::IpAddr>() {
        Ok(ip) => Ok(IpNet::from(ip)),
        Err(_) => bail!("invalid network `{text}`: expected a CIDR such as 10.1.2.0/24"),
    }
}
