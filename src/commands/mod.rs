//! Subcommands, one module each, and what they share: the failure type that
//! carries the exit code, repository access, and terminal styling.

pub mod audit;
pub mod build;
pub mod catalog;
pub mod deps;
pub mod diff;
pub mod fetch;
pub mod generate;
pub mod hash;
pub mod lock;
pub mod matrix;
pub mod package;
pub mod parity;
pub mod progress;
pub mod provenance;
pub mod release;
pub mod repro;
pub mod resolve;
pub mod sbom;
pub mod seed;
pub mod sign;
pub mod smoke;
pub mod targets;
pub mod verify;
pub mod verify_artifact;
pub mod versions;

use std::io::IsTerminal;
use std::path::PathBuf;

use pgbin::data::repo::Repo;
use pgbin::source::project::Project;
use pgbin::source::verify::Level;
use pgbin::util::error::Classify;

/// A command's failure: one line for stderr and the exit code.
#[derive(Debug)]
pub struct Failure {
    /// 1: a check failed; 2: usage or I/O error; 3 and 4: the verdicts of
    /// `diff` and `repro` that are neither (the inputs differed; inconclusive).
    pub code: u8,
    /// What is wrong and what to do, in one line.
    pub message: String,
}

impl Failure {
    /// A verification or check failed (exit 1).
    pub fn check(message: impl Into<String>) -> Failure {
        Failure { code: 1, message: message.into() }
    }

    /// A check failed and the output already said why (exit 1, nothing more printed).
    pub fn silent_check() -> Failure {
        Failure { code: 1, message: String::new() }
    }

    /// A verdict with its own exit code that the output already explained.
    pub fn silent(code: u8) -> Failure {
        Failure { code, message: String::new() }
    }

    /// Bad usage, bad input data or I/O trouble (exit 2).
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure { code: 2, message: message.into() }
    }
}

/// Every library error says which kind of failure it is; this is the one
/// place where that becomes an exit code and a message.
impl<E: Classify> From<E> for Failure {
    fn from(error: E) -> Failure {
        Failure { code: error.kind().exit_code(), message: error.message() }
    }
}

/// What every command gets: where the repository is.
pub struct Context {
    repo_arg: Option<PathBuf>,
}

impl Context {
    /// Records the `--repo` argument; nothing is read yet.
    pub fn new(repo_arg: Option<PathBuf>) -> Context {
        Context { repo_arg }
    }

    /// Locates the repository.
    pub fn repo(&self) -> Result<Repo, Failure> {
        Repo::discover(self.repo_arg.as_deref()).map_err(Failure::from)
    }

    /// Loads all project data.
    pub fn project(&self) -> Result<Project, Failure> {
        Ok(Project::load(&self.repo()?)?)
    }
}

/// Parses an exact version argument (`17.6`, `17.6.0`), as a usage error if malformed.
pub fn exact_version(text: &str) -> Result<pgbin::data::version::Version, Failure> {
    text.parse().map_err(Failure::from)
}

/// The target named by `--target`, or this machine's when none is given.
pub fn chosen_target<'a>(
    project: &'a Project,
    requested: Option<&str>,
) -> Result<&'a pgbin::data::matrix::Target, Failure> {
    let name = requested
        .or(pgbin::build::host_triple())
        .ok_or_else(|| Failure::usage("this machine's target is unknown; pass --target"))?;
    project.matrix.target(name).map_err(Failure::from)
}

/// Prints a value as pretty JSON on stdout; a value JSON cannot hold (a
/// path that is not UTF-8) is a usage error, not a panic.
pub fn print_json<T: serde::Serialize>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::usage(format!("cannot write the answer as JSON: {e}; use the text output")))?;
    println!("{text}");
    Ok(())
}

/// Whether stdout gets ANSI colours (a terminal, and `NO_COLOR` unset or empty).
pub fn use_color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// A trust level, coloured when colours are on.
pub fn styled_level(level: Level) -> String {
    if !use_color() {
        return level.to_string();
    }
    let code = match level {
        Level::Signed => "32",
        Level::Corroborated => "33",
        Level::Unverified => "31",
    };
    format!("\x1b[{code}m{level}\x1b[0m")
}

/// The archive a document describes, and where the document goes; shared
/// by `pgbin provenance` and `pgbin sbom`.
#[derive(Debug, clap::Args)]
pub struct DocumentArgs {
    /// The archive (its manifest must be beside it, or given with --manifest)
    pub archive: PathBuf,
    /// The archive's manifest (default: ARCHIVE.manifest.json)
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Directory to write into (default: the archive's)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Machine-readable output
    #[arg(long)]
    pub json: bool,
}

impl DocumentArgs {
    /// The output directory: `--out`, else the archive's.
    pub fn out_dir(&self) -> PathBuf {
        self.out.clone().unwrap_or_else(|| pgbin::attest::documents::parent_dir(&self.archive))
    }
}

/// Prints what was written: the paths, or JSON.
pub fn print_written(written: &[pgbin::attest::documents::Written], json: bool) -> Result<(), Failure> {
    if json {
        print_json(&written)?;
    } else {
        for w in written {
            println!("{}", w.path.display());
        }
    }
    Ok(())
}
