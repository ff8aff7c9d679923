//! `keywatch`: the one binary. Parses the command line, loads configuration, and hands each
//! subcommand to its module; the work itself lives in the library crates.

mod config;
mod detect_cmd;
mod har_cmd;
mod ingest_cmd;
mod inventory_cmd;
mod output;
mod rules_cmd;
mod scan_cmd;
mod sync_cmd;
mod vendor_cmd;

use clap::{Parser, Subcommand, ValueEnum};

// Readers allocate on worker threads and the detector frees on the main thread; glibc's
// allocator serialises that on an arena lock (a third of `detect`'s time in profiles).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit codes of the shared CLI contract.
pub mod exit {
    /// Ran and found nothing.
    pub const CLEAN: u8 = 0;
    /// Ran and found something.
    pub const FOUND: u8 = 1;
    /// Usage error, or nothing could be read.
    pub const TROUBLE: u8 = 2;
}

#[derive(Parser, Debug)]
#[command(
    name = "keywatch",
    version,
    about = "Inventory, behaviour analysis and secret protection for non-human identities",
    long_about = "Keywatch finds and watches the machine credentials (API keys, OAuth grants, \
                  integration tokens, service accounts, deploy keys, cloud access keys) that \
                  vendors and automation use to reach your systems.\n\n\
                  Exit codes: 0 ran and found nothing, 1 ran and found something, \
                  2 usage error or nothing could be read."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Args, Debug, Clone)]
pub struct Global {
    /// Where Keywatch keeps its state (`scan` keeps none)
    #[arg(long, global = true, env = "KEYWATCH_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Configuration file (TOML); see docs/config.md
    #[arg(long, global = true, env = "KEYWATCH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print less: no progress, no summary, only results and errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more: skipped inputs and rule-loading notes
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Never colour output (also: the NO_COLOR environment variable)
    #[arg(long, global = true)]
    pub no_color: bool,
}

impl Global {
    /// Colour only on a terminal, and never when asked not to.
    pub fn color(&self, is_terminal: bool) -> bool {
        is_terminal && !self.no_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
    }

    /// The data directory: `--data-dir`, else `$XDG_DATA_HOME/keywatch`, else
    /// `~/.local/share/keywatch`.
    pub fn data_dir(&self) -> PathBuf {
        if let Some(dir) = &self.data_dir {
            return dir.clone();
        }
        if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(xdg).join("keywatch");
        }
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
        home.join(".local/share/keywatch")
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Find secrets in files, directories, archives, standard input or git history
    #[command(long_about = scan_cmd::LONG_ABOUT)]
    Scan(Box<scan_cmd::ScanArgs>),
    /// Find secrets in HTTP Archive (HAR) files, or write sanitised copies
    #[command(subcommand)]
    Har(har_cmd::HarCommand),
    /// List the detection rules, or check a rule file (Keywatch or gitleaks format)
    #[command(subcommand)]
    Rules(rules_cmd::RulesCommand),
    /// The inventory of machine credentials: import platform exports, list, show
    #[command(subcommand)]
    Inventory(inventory_cmd::InventoryCommand),
    /// Vendors: the catalogue, and what one vendor could reach (`vendor exposure NAME`)
    #[command(subcommand)]
    Vendor(vendor_cmd::VendorCommand),
    /// Find what stolen machine credentials do in audit logs (AWS, Okta, GitHub, Atlassian,
    /// Google Workspace, mapped sources): new IPs,
    /// networks and clients against each credential's baseline, bursts, enumeration,
    /// privilege changes, use after revocation
    Detect(detect_cmd::DetectArgs),
    /// Store audit-log events, baselines and alerts (`--follow` for a growing file or stdin)
    Ingest(ingest_cmd::IngestArgs),
}

/// Output formats of the shared CLI contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
    Jsonl,
    Sarif,
    Csv,
}

impl Format {
    /// Human on a terminal, JSON when piped.
    pub fn resolve(chosen: Option<Format>, writing_to_terminal: bool) -> Format {
        chosen.unwrap_or(if writing_to_terminal { Format::Human } else { Format::Json })
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Scan(args) => scan_cmd::run(&cli.global, args),
        Command::Har(cmd) => har_cmd::run(&cli.global, cmd),
        Command::Rules(cmd) => rules_cmd::run(&cli.global, cmd),
        Command::Inventory(cmd) => inventory_cmd::run(&cli.global, cmd),
        Command::Vendor(cmd) => vendor_cmd::run(&cli.global, cmd),
        Command::Detect(args) => detect_cmd::run(&cli.global, args),
        Command::Ingest(args) => ingest_cmd::run(&cli.global, args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let color = cli.global.color(std::io::stderr().is_terminal());
            let prefix = if color { "\x1b[31merror\x1b[0m" } else { "error" };
            eprintln!("{prefix}: {err:#}");
            ExitCode::from(exit::TROUBLE)
        }
    }
}
