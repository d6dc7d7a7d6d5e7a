//! The `pgbin` command line: parses arguments and dispatches to one module
//! per subcommand under `commands/`. Exit codes: 0 ok, 1 a check failed,
//! 2 usage or I/O error.

mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Hermetic, verifiable builder of PostgreSQL binaries.
///
/// pgbin owns the PostgreSQL version catalog, the target matrix and the
/// source lock; it verifies every source tarball against signed or
/// corroborated evidence before anything is built, and generates the data
/// the Nix flake builds from.
#[derive(Debug, Parser)]
#[command(name = "pgbin", version, about, long_about = None)]
pub struct Cli {
    /// pgbin checkout holding data/, keys/ and nix/ (default: $PGBIN_REPO, else the
    /// nearest directory above the working directory with data/catalog.toml)
    #[arg(long, global = true, value_name = "DIR")]
    repo: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List known PostgreSQL releases with their source hash and trust level
    Versions(commands::versions::Args),
    /// Resolve a version spec (17, 17.6, 17.6.0) to one release
    Resolve(commands::resolve::Args),
    /// List the target matrix: platforms, Nix builders and features
    Targets(commands::targets::Args),
    /// Print the CI build matrix (GitHub Actions or JSON) from the verified data
    Matrix(commands::matrix::Args),
    /// Verify every locked source and write the Nix data under nix/generated/
    Generate(commands::generate::Args),
    /// Obtain a verified source tarball into the content-addressed cache and print its path
    Fetch(commands::fetch::Args),
    /// Put a verified tarball into the Nix store at the path the flake expects
    Seed(commands::seed::Args),
    /// Build, relocate, package and smoke-test one release for one target
    Build(commands::build::Args),
    /// List (and with --install, install) the Debian packages a host build needs here, native or cross
    Deps(commands::deps::Args),
    /// Relocate and archive an install tree built elsewhere (the Nix builder's output)
    Package(commands::package::Args),
    /// Extract an archive into a fresh directory and check that PostgreSQL runs
    Smoke(commands::smoke::Args),
    /// Verify a local tarball (and evidence files) against the lock; writes nothing
    Verify(commands::verify::Args),
    /// Build twice under varied conditions and prove the outputs identical
    Repro(commands::repro::Args),
    /// Compare two outputs (trees, archives, NARs) and explain every difference
    Diff(commands::diff::Args),
    /// Print the NAR hash of a tree, archive or NAR, as `nix hash path` does
    Hash(commands::hash::Args),
    /// Write an archive's SLSA v1 provenance (in-toto statement) from its manifest
    Provenance(commands::provenance::Args),
    /// Write an archive's SPDX 2.3 SBOM from its manifest
    Sbom(commands::sbom::Args),
    /// Sign archives and provenance: armored detached OpenPGP (.asc), optionally DSSE
    Sign(commands::sign::Args),
    /// Check a downloaded archive offline: .sha256, signatures, provenance subject and trust
    VerifyArtifact(commands::verify_artifact::Args),
    /// Plan a release: resolve, refuse re-releases and downgrades, list every artifact
    #[command(subcommand)]
    Release(commands::release::Command),
    /// Check a repository's pipeline hygiene: pinned actions and images, TLS, Nix, pgbin data
    Audit(commands::audit::Args),
    /// Compare two builds of one release and target from different backends on what must agree
    Parity(commands::parity::Args),
    /// Inspect and change the source lock
    #[command(subcommand)]
    Lock(commands::lock::Command),
    /// Keep the catalog and the lock current from public records
    #[command(subcommand)]
    Catalog(commands::catalog::Command),
}

fn main() -> ExitCode {
    // Like other Unix tools, end quietly when a reader such as `head` closes
    // the pipe, instead of failing on the next write.
    // SAFETY: restoring the default disposition of SIGPIPE before any other
    // thread exists; no handler runs Rust code.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let ctx = commands::Context::new(cli.repo);
    let result = match cli.command {
        Command::Versions(args) => commands::versions::run(&ctx, args),
        Command::Resolve(args) => commands::resolve::run(&ctx, args),
        Command::Targets(args) => commands::targets::run(&ctx, args),
        Command::Matrix(args) => commands::matrix::run(&ctx, args),
        Command::Generate(args) => commands::generate::run(&ctx, args),
        Command::Fetch(args) => commands::fetch::run(&ctx, args),
        Command::Seed(args) => commands::seed::run(&ctx, args),
        Command::Build(args) => commands::build::run(&ctx, args),
        Command::Package(args) => commands::package::run(&ctx, args),
        Command::Smoke(args) => commands::smoke::run(&ctx, args),
        Command::Deps(args) => commands::deps::run(&ctx, args),
        Command::Verify(args) => commands::verify::run(&ctx, args),
        Command::Repro(args) => commands::repro::run(&ctx, args),
        Command::Diff(args) => commands::diff::run(&ctx, args),
        Command::Hash(args) => commands::hash::run(&ctx, args),
        Command::Provenance(args) => commands::provenance::run(&ctx, args),
        Command::Sbom(args) => commands::sbom::run(&ctx, args),
        Command::Sign(args) => commands::sign::run(&ctx, args),
        Command::VerifyArtifact(args) => commands::verify_artifact::run(&ctx, args),
        Command::Release(command) => commands::release::run(&ctx, command),
        Command::Audit(args) => commands::audit::run(&ctx, args),
        Command::Parity(args) => commands::parity::run(&ctx, args),
        Command::Lock(command) => commands::lock::run(&ctx, command),
        Command::Catalog(command) => commands::catalog::run(&ctx, command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if !failure.message.is_empty() {
                eprintln!("pgbin: {}", failure.message);
            }
            ExitCode::from(failure.code)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
