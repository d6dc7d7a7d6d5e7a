//! `parity`: do two builds of the same release and target, made by
//! different backends (Nix musl against Docker musl, Nix gnu against host
//! gnu), agree on what must agree?
//!
//! Bytes legitimately differ between toolchains, so parity compares what a
//! user relies on instead. The checks read the installed tree:
//!
//! - the PostgreSQL version (`pg_config.h`);
//! - the configure flags (`CONFIGURE_ARGS` in `pg_config.h`, which is what
//!   `pg_config --configure` prints), without the prefix and the compiler
//!   variables;
//! - the compiled-in features (`USE_*` and `HAVE_UUID_*` in `pg_config.h`);
//! - the set of binaries (`bin/`);
//! - the extensions (`share/extension/*.control`) and loadable modules;
//! - the bundled third-party libraries;
//! - and, where both archives run on this machine, the smoke test's checks.
//!
//! Only the bundled libraries are informational: they follow the toolchain,
//! and a feature difference they reflect is reported by the other checks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

/// PostgreSQL's own shared libraries (not bundled third-party ones).
const OWN_LIBRARIES: [&str; 4] = ["libpq", "libecpg", "libecpg_compat", "libpgtypes"];

/// What one build holds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Inventory {
    /// `PG_VERSION`.
    pub version: Option<String>,
    /// Configure flags (`--with-*`, `--without-*`, `--enable-*`, `--disable-*`).
    pub configure_flags: BTreeSet<String>,
    /// `USE_*` / `HAVE_UUID_*` macros defined to 1.
    pub features: BTreeSet<String>,
    /// Files in `bin/`.
    pub binaries: BTreeSet<String>,
    /// Extensions (control file stems).
    pub extensions: BTreeSet<String>,
    /// Loadable modules (`*.so` without a version suffix, not `lib*`).
    pub modules: BTreeSet<String>,
    /// Third-party shared libraries bundled into `lib/` (sonames).
    pub bundled_libraries: BTreeSet<String>,
    /// Smoke check name → passed, when the smoke test ran.
    pub smoke: Option<BTreeMap<String, bool>>,
}

/// Why an inventory could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum ParityError {
    /// Not a PostgreSQL install.
    #[error("{0} does not look like a PostgreSQL install (no {1})")]
    NotAnInstall(String, &'static str),
    /// Local I/O.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

fn first_existing(root: &Path, candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(|c| root.join(c)).find(|p| p.is_file())
}

fn names_in(dir: &Path) -> Result<Vec<String>, ParityError> {
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            let mut names = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|e| ParityError::Io(dir.display().to_string(), e))?;
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
            Ok(names)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(ParityError::Io(dir.display().to_string(), e)),
    }
}

/// The feature flags among the quoted arguments of
/// `#define CONFIGURE_ARGS " '…' '…'"`.
fn configure_args(header: &str) -> BTreeSet<String> {
    let Some(line) = header.lines().find(|l| l.starts_with("#define CONFIGURE_ARGS")) else { return BTreeSet::new() };
    let value = line.split_once('"').map_or("", |(_, v)| v);
    value
        .split('\'')
        .skip(1)
        .step_by(2)
        .filter(|arg| ["--with-", "--without-", "--enable-", "--disable-"].iter().any(|p| arg.starts_with(p)))
        .map(str::to_string)
        .collect()
}

/// Takes the inventory of an install tree (the archive's top directory).
pub fn inventory(root: &Path) -> Result<Inventory, ParityError> {
    let name = root.display().to_string();
    let header = first_existing(root, &["include/server/pg_config.h", "include/postgresql/server/pg_config.h"])
        .ok_or_else(|| ParityError::NotAnInstall(name.clone(), "include/server/pg_config.h"))?;
    let header = std::fs::read_to_string(&header).map_err(|e| ParityError::Io(header.display().to_string(), e))?;
    let mut inventory = Inventory::default();
    for line in header.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("#define") {
            continue;
        }
        let (Some(macro_name), Some(value)) = (words.next(), words.next()) else { continue };
        if macro_name == "PG_VERSION" {
            inventory.version = Some(value.trim_matches('"').to_string());
        } else if (macro_name.starts_with("USE_") || macro_name.starts_with("HAVE_UUID_")) && value == "1" {
            inventory.features.insert(macro_name.to_string());
        }
    }
    inventory.configure_flags = configure_args(&header);
    inventory.binaries = names_in(&root.join("bin"))?.into_iter().collect();
    for dir in ["share/extension", "share/postgresql/extension"] {
        for file in names_in(&root.join(dir))? {
            if let Some(stem) = file.strip_suffix(".control") {
                inventory.extensions.insert(stem.to_string());
            }
        }
    }
    for dir in ["lib", "lib/postgresql"] {
        for file in names_in(&root.join(dir))? {
            let is_library = file.starts_with("lib") && file.contains(".so");
            if !is_library && file.ends_with(".so") {
                inventory.modules.insert(file);
            } else if is_library && file.contains(".so.") {
                let stem = file.split(".so").next().unwrap_or(&file);
                if !OWN_LIBRARIES.contains(&stem) {
                    let soname_like = file.split('.').take_while(|p| !p.chars().all(|c| c.is_ascii_digit())).count();
                    let parts: Vec<&str> = file.split('.').collect();
                    let soname = parts[..(soname_like + 1).min(parts.len())].join(".");
                    inventory.bundled_libraries.insert(soname);
                }
            }
        }
    }
    Ok(inventory)
}

/// One compared aspect.
#[derive(Debug, Clone, Serialize)]
pub struct Aspect {
    /// What is compared (`configure flags`).
    pub name: &'static str,
    /// Whether a difference here matters to users.
    pub matters: bool,
    /// Items only in A.
    pub only_in_a: Vec<String>,
    /// Items only in B.
    pub only_in_b: Vec<String>,
    /// A note (why it does or does not matter, or why it was not compared).
    pub note: String,
}

impl Aspect {
    /// Whether the two sides agree.
    pub fn agrees(&self) -> bool {
        self.only_in_a.is_empty() && self.only_in_b.is_empty()
    }
}

fn aspect(name: &'static str, matters: bool, a: &BTreeSet<String>, b: &BTreeSet<String>, note: &str) -> Aspect {
    Aspect {
        name,
        matters,
        only_in_a: a.difference(b).cloned().collect(),
        only_in_b: b.difference(a).cloned().collect(),
        note: note.to_string(),
    }
}

fn smoke_set(smoke: &BTreeMap<String, bool>) -> BTreeSet<String> {
    smoke.iter().map(|(name, passed)| format!("{name}: {}", if *passed { "passed" } else { "FAILED" })).collect()
}

/// Compares two inventories aspect by aspect.
pub fn compare(a: &Inventory, b: &Inventory) -> Vec<Aspect> {
    let version = |i: &Inventory| i.version.iter().cloned().collect::<BTreeSet<String>>();
    let mut aspects = vec![
        aspect("version", true, &version(a), &version(b), "PG_VERSION from pg_config.h"),
        aspect(
            "configure flags",
            true,
            &a.configure_flags,
            &b.configure_flags,
            "as `pg_config --configure` prints them",
        ),
        aspect("features", true, &a.features, &b.features, "USE_* and HAVE_UUID_* compiled in (pg_config.h)"),
        aspect("binaries", true, &a.binaries, &b.binaries, "files in bin/"),
        aspect("extensions", true, &a.extensions, &b.extensions, "share/extension/*.control"),
        aspect("modules", true, &a.modules, &b.modules, "loadable modules in lib/"),
        aspect(
            "bundled libraries",
            false,
            &a.bundled_libraries,
            &b.bundled_libraries,
            "follow the toolchain; what they change is reported under features",
        ),
    ];
    match (&a.smoke, &b.smoke) {
        (Some(sa), Some(sb)) => {
            aspects.push(aspect("smoke test", true, &smoke_set(sa), &smoke_set(sb), "server behaviour"))
        }
        _ => aspects.push(Aspect {
            name: "smoke test",
            matters: true,
            only_in_a: Vec::new(),
            only_in_b: Vec::new(),
            note: "not run: both sides must be archives that run on this machine".into(),
        }),
    }
    aspects
}

crate::util::error::usage_errors!(ParityError);

/// The parity of two builds: both inventories and every compared aspect.
#[derive(Debug, Serialize)]
pub struct ParityReport {
    /// Whether every aspect that matters agrees.
    pub agree: bool,
    /// Every compared aspect.
    pub aspects: Vec<Aspect>,
    /// What build A holds.
    pub inventory_a: Inventory,
    /// What build B holds.
    pub inventory_b: Inventory,
}

/// Why two builds could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum CompareBuildsError {
    /// A build cannot be opened.
    #[error(transparent)]
    Open(#[from] crate::compare::tree::TreeError),
    /// A build's tree cannot be read.
    #[error(transparent)]
    Inventory(#[from] ParityError),
    /// The smoke test could not run.
    #[error(transparent)]
    Smoke(#[from] crate::build::smoke::SmokeError),
}

crate::util::error::usage_errors!(CompareBuildsError);

/// Whether `path` is an archive built for this machine (so its smoke test
/// can run here).
fn runs_here(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.is_file() && crate::build::host_triple().is_some_and(|triple| name.ends_with(&format!("-{triple}.tar.gz")))
}

fn take_inventory(path: &Path, scratch: &Path) -> Result<Inventory, CompareBuildsError> {
    let opened = crate::compare::tree::open_on_disk(path, scratch)?;
    Ok(inventory(opened.disk_root().expect("opened on disk"))?)
}

fn smoke_checks(archive: &Path, scratch: &Path) -> Result<BTreeMap<String, bool>, CompareBuildsError> {
    let report = crate::build::smoke::smoke(archive, scratch, None)?;
    Ok(report.checks.into_iter().map(|c| (c.name, c.passed)).collect())
}

/// Inventories builds `a` and `b` (archives or install directories), adds
/// each one's smoke-test results when `smoke` is set and both archives run
/// on this machine, and compares them.
pub fn compare_builds(a: &Path, b: &Path, smoke: bool) -> Result<ParityReport, CompareBuildsError> {
    let scratch = std::env::temp_dir();
    let mut inventory_a = take_inventory(a, &scratch)?;
    let mut inventory_b = take_inventory(b, &scratch)?;
    if smoke && runs_here(a) && runs_here(b) {
        inventory_a.smoke = Some(smoke_checks(a, &scratch)?);
        inventory_b.smoke = Some(smoke_checks(b, &scratch)?);
    }
    let aspects = compare(&inventory_a, &inventory_b);
    let agree = aspects.iter().all(|x| x.agrees() || !x.matters);
    Ok(ParityReport { agree, aspects, inventory_a, inventory_b })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configure_args_keep_feature_flags_only() {
        let header = "#define CONFIGURE_ARGS \" '--prefix=/opt/x' '--disable-rpath' '--with-icu' 'CFLAGS=-O2 -g' '--without-readline'\"\n";
        let flags: Vec<String> = configure_args(header).into_iter().collect();
        assert_eq!(flags, ["--disable-rpath", "--with-icu", "--without-readline"]);
    }

    #[test]
    fn a_missing_feature_is_reported_on_its_side() {
        let mut a = Inventory::default();
        a.features.insert("USE_ICU".into());
        let b = Inventory::default();
        let aspects = compare(&a, &b);
        let features = aspects.iter().find(|x| x.name == "features").unwrap();
        assert_eq!(features.only_in_a, ["USE_ICU"]);
        assert!(!features.agrees() && features.matters);
    }
}
