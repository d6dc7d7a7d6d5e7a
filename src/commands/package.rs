//! `pgbin package`: relocate, archive and describe an install tree that was
//! built elsewhere: the Nix builder's output, inside the archive derivation
//! (`nix/archive.nix`), or any tree installed with the same recipe (the
//! work is `pgbin::build::prebuilt`).

use std::path::PathBuf;

use serde::Serialize;

use pgbin::build::manifest::Backend;
use pgbin::build::prebuilt::{TreeRequest, package_tree};

use super::{Context, Failure, print_json};

/// Which backend built the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BuiltBy {
    /// the flake's generic builder: libraries are found through the files'
    /// own /nix/store RUNPATHs, and store references are neutralised
    Nix,
    /// this machine's toolchain: libraries are found through ldconfig
    Host,
}

/// Arguments of `pgbin package`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The installed tree (its bin/, lib/, share/ and include/); left unchanged
    tree: PathBuf,
    /// Exact version the tree was built from (18.6)
    #[arg(long)]
    version: String,
    /// Target triple or attribute suffix (default: this machine's)
    #[arg(long, value_name = "TRIPLE")]
    target: Option<String>,
    /// The source tarball the tree was built from; checked against the lock
    #[arg(long, value_name = "TARBALL")]
    source: PathBuf,
    /// Which backend built the tree
    #[arg(long = "built-by", value_enum, default_value_t = BuiltBy::Nix)]
    built_by: BuiltBy,
    /// The compiler's name, recorded in the manifest (nix: the stdenv compiler)
    #[arg(long, value_name = "NAME")]
    compiler: Option<String>,
    /// Where the archive, .sha256 and manifest are written
    #[arg(long, value_name = "DIR", default_value = "dist")]
    out: PathBuf,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Packaged<'a> {
    archive: PathBuf,
    checksum_file: PathBuf,
    manifest_file: PathBuf,
    sha256: &'a str,
    bundled_libraries: usize,
    scrubbed_store_references: &'a [String],
}

/// Runs the command.
pub fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let version = super::exact_version(&args.version)?;
    let project = ctx.project()?;
    let target = super::chosen_target(&project, args.target.as_deref())?;
    let request = TreeRequest {
        tree: &args.tree,
        version,
        target,
        source: &args.source,
        built_by: match args.built_by {
            BuiltBy::Nix => Backend::Nix,
            BuiltBy::Host => Backend::Host,
        },
        compiler: args.compiler.as_deref(),
        out: &args.out,
    };
    let assembled = package_tree(&project, &request)?;
    let files = [&assembled.packaged.archive, &assembled.packaged.checksum_file, &assembled.manifest_file];
    if args.json {
        print_json(&Packaged {
            archive: files[0].clone(),
            checksum_file: files[1].clone(),
            manifest_file: files[2].clone(),
            sha256: &assembled.packaged.sha256,
            bundled_libraries: assembled.manifest.bundled_libraries.len(),
            scrubbed_store_references: &assembled.manifest.scrubbed_store_references,
        })?;
    } else {
        for path in files {
            println!("{}", path.display());
        }
    }
    Ok(())
}
