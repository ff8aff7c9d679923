//! The configuration file (`--config FILE` or `KEYWATCH_CONFIG`): defaults for command-line
//! options, so a team can commit its scanning policy. Command-line flags win.

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub scan: ScanConfig,
    #[serde(default)]
    pub har: HarConfig,
    /// `[inventory]`: the connectors `keywatch inventory sync` runs.
    #[serde(default)]
    pub inventory: keywatch_inventory::sync::SyncConfig,
    #[serde(default)]
    pub vendors: VendorsConfig,
    #[serde(default)]
    pub detect: DetectConfig,
}

/// `[detect]`: what `keywatch detect` and `keywatch ingest` read besides the logs.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectConfig {
    /// MaxMind-format .mmdb files (GeoLite2, DB-IP lite, ipinfo lite) or ASN range CSVs, for
    /// ASN, organisation, country and hosting; relative to the config file.
    #[serde(default)]
    pub ip_databases: Vec<PathBuf>,
    /// Field-mapping files for other JSON-lines sources; relative to the config file.
    #[serde(default)]
    pub mappings: Vec<PathBuf>,
    /// Known automation networks: CIDRs (`52.94.0.0/16`), addresses, or `AS16509`.
    #[serde(default)]
    pub allow_networks: Vec<String>,
    /// Known automation clients: case-insensitive substrings of the user agent.
    #[serde(default)]
    pub allow_user_agents: Vec<String>,
    /// Events per credential that form its baseline when no training window is given.
    pub baseline_events: Option<u64>,
}

/// `[vendors]`: the team's own vendor catalogue files, read after the built-in one.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendorsConfig {
    /// Catalogue files (TOML, the built-in catalogue's format), relative to the config file.
    #[serde(default)]
    pub catalogue: Vec<PathBuf>,
}

/// `[har]`: defaults for `keywatch har scan` and `har sanitize`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HarConfig {
    /// More field, parameter and header names whose values are redacted.
    #[serde(default)]
    pub redact_names: Vec<String>,
    /// Largest entry read whole (K, M, G suffixes).
    pub max_entry_size: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanConfig {
    /// Extra rule files, relative to the config file.
    #[serde(default)]
    pub rules: Vec<PathBuf>,
    #[serde(default)]
    pub no_default_rules: bool,
    #[serde(default)]
    pub exclude: Vec<String>,
    pub max_file_size: Option<String>,
    pub max_archive_size: Option<String>,
    pub archive_depth: Option<u32>,
    pub baseline: Option<PathBuf>,
}

impl Config {
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let Some(path) = path else { return Ok(Config::default()) };
        let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read config", path.display()))?;
        let mut config: Config = toml::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for rules in &mut config.scan.rules {
            if rules.is_relative() {
                *rules = base.join(&*rules);
            }
        }
        for file in &mut config.vendors.catalogue {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        }
        for file in config.detect.ip_databases.iter_mut().chain(&mut config.detect.mappings) {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        }
        if let Some(baseline) = &mut config.scan.baseline {
            if baseline.is_relative() {
                *baseline = base.join(&*baseline);
            }
        }
        Ok(config)
    }
}

/// Parses sizes such as `1048576`, `512K`, `100M`, `2G` (binary units; `MB`, `MiB` also).
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    if digits.is_empty() {
        bail!("invalid size {text:?}: expected a number with an optional K, M or G suffix");
    }
    let n: u64 = digits.parse().map_err(|_| anyhow!("invalid size {text:?}"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => bail!("invalid size unit {other:?} in {text:?}: use K, M or G"),
    };
    n.checked_mul(multiplier).ok_or_else(|| anyhow!("size {text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100").unwrap(), 100);
        assert_eq!(parse_size("100M").unwrap(), 100 << 20);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert!(parse_size("M").is_err());
        assert!(parse_size("10X").is_err());
    }
}
