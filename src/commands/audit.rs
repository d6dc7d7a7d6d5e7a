//! `pgbin audit`: pipeline hygiene rules over a repository (GitHub
//! workflows, Dockerfiles, TLS settings in any tracked file, Nix, and
//! pgbin's own data). Exit 0 when clean, 1 with findings, 2 when the audit
//! could not run.

use std::path::PathBuf;

use pgbin::audit::{self, Options};

use super::{Context, Failure, print_json, use_color};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuditFormat {
    /// one line per finding with its fix, then a summary
    Text,
    /// the report as JSON
    Json,
    /// SARIF 2.1.0, for code-scanning tools
    Sarif,
}

/// Arguments of `pgbin audit`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Repository to audit (default: this pgbin checkout)
    path: Option<PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value_t = AuditFormat::Text)]
    format: AuditFormat,
    /// Also compare the source lock with this git revision (e.g. the pull
    /// request's base) and report downgrades and changed hashes without a
    /// recorded override
    #[arg(long, value_name = "REV")]
    base: Option<String>,
}

/// Runs the command.
pub fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let root = match args.path {
        Some(path) => path,
        None => ctx.repo()?.root().to_path_buf(),
    };
    if !root.is_dir() {
        return Err(Failure::usage(format!("{} is not a directory", root.display())));
    }
    let report = audit::audit(&root, &Options { base: args.base })?;
    match args.format {
        AuditFormat::Json => print_json(&report)?,
        AuditFormat::Sarif => print_json(&audit::sarif::log(&report, env!("CARGO_PKG_VERSION")))?,
        AuditFormat::Text => {
            let color = use_color();
            for f in &report.findings {
                let severity = match (color, f.severity) {
                    (true, audit::Severity::High) => format!("\x1b[31m{}\x1b[0m", f.severity.as_str()),
                    (true, audit::Severity::Medium) => format!("\x1b[33m{}\x1b[0m", f.severity.as_str()),
                    _ => f.severity.as_str().to_string(),
                };
                println!("{}:{}: {} {} ({severity}): {}", f.path, f.line, f.rule, f.name, f.message);
                println!("    fix: {}", f.fix);
            }
            let count = |s| report.findings.iter().filter(|f| f.severity == s).count();
            if report.findings.is_empty() {
                println!(
                    "no findings in {} files ({} path(s) excluded by .pgbin-audit.toml)",
                    report.files,
                    report.excluded.len()
                );
            } else {
                println!(
                    "{} finding(s): {} high, {} medium, {} low, in {} files",
                    report.findings.len(),
                    count(audit::Severity::High),
                    count(audit::Severity::Medium),
                    count(audit::Severity::Low),
                    report.files
                );
            }
        }
    }
    if report.findings.is_empty() { Ok(()) } else { Err(Failure::silent_check()) }
}
