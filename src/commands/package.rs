//! `pgbin package`: relocate, archive and describe an install tree that was
//! built elsewhere: the Nix builder's output, inside the archive derivation
//! (`nix/archive.nix`), or any tree installed with the same recipe. Same
//! relocation checks, archive format and manifest as `pgbin build`.

use std::path::PathBuf;

use serde::Serialize;

use pgbin::build::relocate::{self, LibrarySearch};
use pgbin::build::{self, AssemblyInputs, Backend, Toolchain};
use pgbin::nix::store;

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
    if !args.tree.join("bin/postgres").is_file() {
        return Err(Failure::usage(format!(
            "{} is not an installed PostgreSQL tree (no bin/postgres); pass the install prefix",
            args.tree.display()
        )));
    }
    let assessment = super::fetch::buildable_assessment(&project, version, "package")?;
    let entry = super::locked_entry(&project, version)?;
    pgbin::source::verify::check_tarball(&args.source, entry)?;
    let (_, release) = project.catalog.release(version).expect("the lock only holds catalogued releases");

    let (backend, toolchain) = match args.built_by {
        BuiltBy::Nix => (
            Backend::Nix,
            Toolchain {
                compiler: args.compiler.clone().unwrap_or_else(|| "unrecorded".into()),
                packages: Default::default(),
                nixpkgs: store::nixpkgs_pin(project.repo.root()),
            },
        ),
        BuiltBy::Host => {
            let packages = project.matrix.host_packages(target, version);
            let mut toolchain = build::host_toolchain(&packages).map_err(|e| Failure::usage(e.to_string()))?;
            if let Some(compiler) = &args.compiler {
                toolchain.compiler = compiler.clone();
            }
            (Backend::Host, toolchain)
        }
    };
    let inputs = AssemblyInputs {
        version,
        entry,
        assessment: &assessment,
        target,
        matrix: &project.matrix,
        source_date_epoch: release.source_date_epoch(),
        toolchain: &toolchain,
        backend,
    };

    let work = tempfile::Builder::new()
        .prefix("pgbin-package-")
        .tempdir()
        .map_err(|e| Failure::usage(format!("cannot create a work directory: {e}")))?;
    let prefix = work.path().join(inputs.stem());
    pgbin::util::fs::copy_tree(&args.tree, &prefix)
        .map_err(|e| Failure::usage(format!("cannot copy {}: {e}", args.tree.display())))?;
    let tree = std::path::absolute(&args.tree).unwrap_or_else(|_| args.tree.clone());
    let store_dir = store::store_dir();
    let owning_store = store_dir.clone();
    let describe_store =
        move |path: &std::path::Path| match store::package_of(&owning_store, &path.display().to_string()) {
            Some((name, version)) => (Some(name), version),
            None => (None, None),
        };
    let system;
    let policy = match backend {
        Backend::Nix => relocate::Policy {
            search: LibrarySearch::Runpath,
            interpreter: target.standard_interpreter(),
            forbidden: vec![tree.display().to_string(), work.path().display().to_string()],
            scrub_store: Some(store_dir.clone()),
            describe: &describe_store,
        },
        Backend::Host => {
            system = relocate::system_libraries().map_err(|e| Failure::usage(e.to_string()))?;
            relocate::Policy {
                search: LibrarySearch::System(&system),
                interpreter: target.standard_interpreter(),
                forbidden: vec![tree.display().to_string(), work.path().display().to_string()],
                scrub_store: None,
                describe: &pgbin::source::debian::owning_package,
            }
        }
    };
    let assembled = build::assemble(&prefix, &inputs, &policy, &args.out, &mut |_| ())
        .map_err(|e| Failure::check(format!("packaging failed: {e}")))?;
    let files = [&assembled.packaged.archive, &assembled.packaged.checksum_file, &assembled.manifest_file];
    if args.json {
        print_json(&Packaged {
            archive: files[0].clone(),
            checksum_file: files[1].clone(),
            manifest_file: files[2].clone(),
            sha256: &assembled.packaged.sha256,
            bundled_libraries: assembled.manifest.bundled_libraries.len(),
            scrubbed_store_references: &assembled.manifest.scrubbed_store_references,
        });
    } else {
        for path in files {
            println!("{}", path.display());
        }
    }
    Ok(())
}
