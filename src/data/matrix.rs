//! The target matrix: platforms, how Nix builds them, and their features.
//!
//! Read from `data/targets.toml`. A target's feature set is a property of
//! the target alone, never of the system that builds it, so a native build
//! and a cross build of one target are configured identically.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::repo::{self, Repo};
use crate::data::version::Version;
use crate::util::confined::{Bound, ConfinedError, read_confined_text};

/// The most bytes the target matrix may hold: the matrix is about 6 KiB for every target today; 1 MiB
/// is room for any plausible number of targets and still bounds the memory a
/// replaced (or endless) file can take.
pub const TARGETS_BOUND: Bound = Bound { bytes: 1 << 20, what: "the target matrix" };

/// The whole matrix as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matrix {
    /// Feature definitions, in configure-flag order.
    pub features: Vec<Feature>,
    /// The host backend's recipe.
    pub host: HostRecipe,
    /// What every build shares.
    pub recipe: Recipe,
    /// Targets, in display order.
    pub targets: Vec<Target>,
}

/// What the host backend needs beyond the features' own packages.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostRecipe {
    /// Debian packages every host build runs on the build machine.
    pub build_packages: Vec<String>,
    /// Debian packages of the target's libraries every host build needs
    /// (installed for the target's architecture when cross-compiling).
    pub library_packages: Vec<String>,
    /// C compiler flags.
    pub cflags: Vec<String>,
    /// Linker flags.
    pub ldflags: Vec<String>,
    /// What a cross build adds.
    pub cross: CrossRecipe,
}

/// What a host build for another Debian architecture adds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossRecipe {
    /// Build-machine packages; `{arch}` is the target's Debian architecture.
    pub build_packages: Vec<String>,
    /// Target-architecture packages of the sysroot besides the libraries
    /// (the C library's development files).
    pub sysroot_packages: Vec<String>,
    /// Answers to the configure run tests that cannot run under cross,
    /// as configure cache variables.
    pub configure_answers: BTreeMap<String, String>,
    /// Run tests configure guesses under cross that a Linux build never
    /// evaluates or whose feature is off, with the reason.
    pub not_run_on_linux: BTreeMap<String, String>,
}

/// A target's Debian architecture, for the host backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebianArch {
    /// dpkg's architecture name (`arm64`).
    pub arch: String,
    /// The multiarch directory name (`aarch64-linux-gnu`: `/usr/lib/aarch64-linux-gnu`).
    pub multiarch: String,
    /// The GNU type of Debian's toolchain for it (`i686-linux-gnu`: `i686-linux-gnu-gcc`).
    pub gnu_type: String,
}

impl DebianArch {
    /// Debian's cross compiler for it (`aarch64-linux-gnu-gcc`, from
    /// `crossbuild-essential-ARCH`).
    pub fn cross_compiler(&self) -> String {
        format!("{}-gcc", self.gnu_type)
    }
}

/// The part of the build recipe every backend shares.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// Configure flags given before the features' flags.
    pub configure: Vec<String>,
}

/// A configurable PostgreSQL feature.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feature {
    /// Short name (`icu`, `lz4`).
    pub name: String,
    /// What it gives users.
    pub description: String,
    /// First major that has it.
    pub since: u32,
    /// Configure flags that turn it on.
    pub enable: Vec<String>,
    /// Configure flags that turn it off (empty when off is the default).
    pub disable: Vec<String>,
    /// Debian packages the host backend needs to build it.
    #[serde(default)]
    pub debian_packages: Vec<String>,
    /// Last major that spells `enable` differently.
    #[serde(default)]
    pub legacy_until: Option<u32>,
    /// The older spelling of `enable`.
    #[serde(default)]
    pub legacy_enable: Vec<String>,
    /// Whether targets have it unless they say otherwise.
    #[serde(default = "default_true")]
    pub default: bool,
    /// Why it is off everywhere, when `default` is false.
    #[serde(default)]
    pub off_reason: Option<String>,
}

fn default_true() -> bool {
    true
}

/// One platform pgbin produces archives for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Rust-style target triple, used in archive names.
    pub triple: String,
    /// Suffix of the flake attribute (`aarch64-linux`).
    pub attr_suffix: String,
    /// Operating system family (`linux`, `darwin`).
    pub os: String,
    /// C library (`glibc`, `musl`, `libSystem`).
    pub libc: String,
    /// Nix systems able to build it.
    pub builders: Vec<Builder>,
    /// Features this target turns off, with the reason.
    #[serde(default)]
    pub disable: BTreeMap<String, String>,
    /// Its Debian architecture, when the host backend can build it on Debian.
    #[serde(default)]
    pub debian: Option<DebianArch>,
    /// Why no archive of this target is offered yet, when one would not run:
    /// a withheld target has no flake package, CI row or build.
    #[serde(default)]
    pub withheld: Option<String>,
}

/// A Nix system that can build a target, and the package set it uses.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Builder {
    /// Nix system double (`x86_64-linux`).
    pub system: String,
    /// Dotted attribute path into nixpkgs (`pkgs`, `pkgsCross.musl64`).
    pub package_set: String,
}

/// A feature's state for one (version, target).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureState {
    /// Whether it is built in.
    pub enabled: bool,
    /// Why it is off; absent when on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Problems loading the matrix.
#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    /// The file is not a regular file inside the repository, is too large,
    /// or could not be read.
    #[error(transparent)]
    Read(#[from] ConfinedError),
    /// Not valid TOML for the matrix.
    #[error("malformed target matrix {path}: {message}")]
    Parse {
        /// File path.
        path: String,
        /// Parser message.
        message: String,
    },
    /// Well-formed but inconsistent.
    #[error("inconsistent target matrix: {0}")]
    Invalid(String),
    /// A requested target is not in the matrix.
    #[error("unknown target '{0}'; known targets: {1}")]
    UnknownTarget(String, String),
}

impl Builder {
    /// Whether this builder cross-compiles (uses a package set other than the system's own).
    pub fn is_cross(&self) -> bool {
        self.package_set != "pkgs"
    }

    /// The package set as an attribute path (`["pkgsCross", "musl64"]`; empty for `pkgs`).
    pub fn package_set_path(&self) -> Vec<String> {
        if self.is_cross() { self.package_set.split('.').map(str::to_string).collect() } else { Vec::new() }
    }
}

/// Whether archives for `os` and `libc` are smoke-tested on the system that
/// builds them (`checks.<system>.<attr>-smoke`): glibc Linux, natively or
/// under the target's emulator (nix/lib.nix, smokeTestable).
pub fn smoke_tested_where_built(os: &str, libc: &str) -> bool {
    os == "linux" && libc == "glibc"
}

impl Target {
    /// Whether the flake smoke-tests this target's archives where they are
    /// built ([`smoke_tested_where_built`]).
    pub fn smoke_tested_where_built(&self) -> bool {
        smoke_tested_where_built(&self.os, &self.libc)
    }

    /// The archive file name for a release of this target.
    pub fn archive_name(&self, version: Version) -> String {
        format!("postgresql-{}-{}.tar.gz", version.archive_version(), self.triple)
    }

    /// The flake attribute name for a release of this target.
    pub fn attr_name(&self, version: Version) -> String {
        format!("postgresql-{}-{}", version.attr_version(), self.attr_suffix)
    }

    /// The ELF interpreter every system of this target has at a fixed path
    /// (the one distributions install), or `None` where the target is not
    /// ELF-based. Relocated executables must name exactly this one.
    pub fn standard_interpreter(&self) -> Option<&'static str> {
        self.isa().map(|isa| isa.interpreter)
    }

    /// The target's Debian architecture when a machine of Debian
    /// architecture `build_arch` cross-compiles for it (`None`: a native
    /// build, or a target without a Debian architecture).
    pub fn cross_arch(&self, build_arch: &str) -> Option<&DebianArch> {
        self.debian.as_ref().filter(|d| d.arch != build_arch)
    }

    /// The instruction set every ELF file of this target declares, or
    /// `None` where pgbin does not know one (non-ELF targets).
    pub fn isa(&self) -> Option<&'static crate::data::isa::Isa> {
        crate::data::isa::for_triple(&self.triple)
    }
}

impl Matrix {
    /// Loads and validates the repository's `data/targets.toml` (a regular file of at
    /// most [`TARGETS_BOUND`], reached through no link).
    pub fn load(repo: &Repo) -> Result<Matrix, MatrixError> {
        let text = read_confined_text(repo.root(), Path::new(repo::TARGETS), TARGETS_BOUND)?;
        Matrix::parse(&text, &repo.root().join(repo::TARGETS).display().to_string())
    }

    /// Parses and validates matrix text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Matrix, MatrixError> {
        let matrix: Matrix = toml::from_str(text)
            .map_err(|e| MatrixError::Parse { path: origin.to_string(), message: e.message().to_string() })?;
        matrix.validate()?;
        Ok(matrix)
    }

    fn validate(&self) -> Result<(), MatrixError> {
        let invalid = |m: String| Err(MatrixError::Invalid(m));
        let mut names = BTreeSet::new();
        for feature in &self.features {
            if !names.insert(feature.name.as_str()) {
                return invalid(format!("feature {} defined twice", feature.name));
            }
            if !feature.default && feature.off_reason.is_none() {
                return invalid(format!("feature {} is off by default but gives no off_reason", feature.name));
            }
            if feature.legacy_until.is_some() == feature.legacy_enable.is_empty() {
                return invalid(format!("feature {}: legacy_until and legacy_enable go together", feature.name));
            }
        }
        let mut triples = BTreeSet::new();
        let mut suffixes = BTreeSet::new();
        for target in &self.targets {
            if !triples.insert(target.triple.as_str()) || !suffixes.insert(target.attr_suffix.as_str()) {
                return invalid(format!("target {} or its suffix is listed twice", target.triple));
            }
            if target.builders.is_empty() {
                return invalid(format!("target {} has no builders", target.triple));
            }
            if target.os == "linux" && target.isa().is_none() {
                return invalid(format!("Linux target {} has no known instruction set (data/isa.rs)", target.triple));
            }
            if target.debian.is_some() && (target.os != "linux" || target.libc != "glibc") {
                return invalid(format!(
                    "target {}: only Linux glibc targets have a Debian architecture",
                    target.triple
                ));
            }
            let mut systems = BTreeSet::new();
            for builder in &target.builders {
                if !systems.insert(builder.system.as_str()) {
                    return invalid(format!("target {}: system {} listed twice", target.triple, builder.system));
                }
            }
            for name in target.disable.keys() {
                if !names.contains(name.as_str()) {
                    return invalid(format!("target {} disables unknown feature {name}", target.triple));
                }
            }
        }
        let cross = &self.host.cross;
        if let Some(both) = cross.configure_answers.keys().find(|k| cross.not_run_on_linux.contains_key(*k)) {
            return invalid(format!("{both} is both answered and listed as not run on Linux"));
        }
        Ok(())
    }

    /// Looks a target up by triple or attribute suffix.
    pub fn target(&self, name: &str) -> Result<&Target, MatrixError> {
        self.targets.iter().find(|t| t.triple == name || t.attr_suffix == name).ok_or_else(|| {
            let known: Vec<&str> = self.targets.iter().map(|t| t.triple.as_str()).collect();
            MatrixError::UnknownTarget(name.to_string(), known.join(", "))
        })
    }

    /// Every Nix system that builds at least one target, sorted.
    pub fn systems(&self) -> BTreeSet<&str> {
        self.targets.iter().flat_map(|t| t.builders.iter().map(|b| b.system.as_str())).collect()
    }

    /// Each feature's state for one release on one target, keyed by name.
    pub fn features_for(&self, target: &Target, version: Version) -> BTreeMap<String, FeatureState> {
        self.features
            .iter()
            .map(|feature| {
                let reason = if version.major < feature.since {
                    Some(format!("not available before PostgreSQL {}", feature.since))
                } else if !feature.default {
                    feature.off_reason.clone()
                } else {
                    target.disable.get(&feature.name).cloned()
                };
                (feature.name.clone(), FeatureState { enabled: reason.is_none(), reason })
            })
            .collect()
    }

    /// Debian packages a host build of one release on one target needs on
    /// a machine of Debian architecture `build_arch`, sorted. When the
    /// target's architecture is another, the build is a cross build: the
    /// cross recipe's packages replace the libraries, which go into the
    /// build's sysroot instead ([`Matrix::sysroot_packages`]).
    pub fn host_packages(&self, target: &Target, version: Version, build_arch: &str) -> Vec<String> {
        let mut packages: BTreeSet<String> = self.host.build_packages.iter().cloned().collect();
        match target.cross_arch(build_arch) {
            None => packages.extend(self.library_packages(target, version)),
            Some(debian) => {
                packages.extend(self.host.cross.build_packages.iter().map(|p| p.replace("{arch}", &debian.arch)));
            }
        }
        packages.into_iter().collect()
    }

    /// The Debian packages a cross build of `version` for `target` unpacks
    /// into its sysroot, as `name:arch`, sorted (none for a native build).
    pub fn sysroot_packages(&self, target: &Target, version: Version, build_arch: &str) -> Vec<String> {
        let Some(debian) = target.cross_arch(build_arch) else { return Vec::new() };
        let mut packages: BTreeSet<String> = self.library_packages(target, version).into_iter().collect();
        packages.extend(self.host.cross.sysroot_packages.iter().cloned());
        packages.into_iter().map(|p| format!("{p}:{}", debian.arch)).collect()
    }

    /// The Debian packages of the target's libraries a host build of
    /// `version` needs (unqualified): the recipe's and every enabled feature's.
    fn library_packages(&self, target: &Target, version: Version) -> Vec<String> {
        let states = self.features_for(target, version);
        let mut libraries: Vec<String> = self.host.library_packages.clone();
        for feature in self.features.iter().filter(|f| states[&f.name].enabled) {
            libraries.extend(feature.debian_packages.iter().cloned());
        }
        libraries
    }

    /// Configure flags for one release on one target, in feature order.
    /// The install prefix is the builder's business and is not included.
    pub fn configure_flags(&self, target: &Target, version: Version) -> Vec<String> {
        let states = self.features_for(target, version);
        let mut flags = self.recipe.configure.clone();
        for feature in &self.features {
            let state = &states[&feature.name];
            if state.enabled {
                match feature.legacy_until {
                    Some(until) if version.major <= until => flags.extend(feature.legacy_enable.iter().cloned()),
                    _ => flags.extend(feature.enable.iter().cloned()),
                }
            } else if version.major >= feature.since {
                flags.extend(feature.disable.iter().cloned());
            }
        }
        flags
    }
}

crate::util::error::usage_errors!(MatrixError);

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix() -> Matrix {
        Matrix::load(&Repo::discover(Some(Path::new(env!("CARGO_MANIFEST_DIR")))).unwrap()).unwrap()
    }

    #[test]
    fn committed_matrix_is_valid_and_complete() {
        let m = matrix();
        let triples: Vec<&str> = m.targets.iter().map(|t| t.triple.as_str()).collect();
        for triple in [
            "x86_64-unknown-linux-gnu",
            "aarch64-unknown-linux-gnu",
            "x86_64-unknown-linux-musl",
            "aarch64-unknown-linux-musl",
            "i686-unknown-linux-musl",
            "powerpc64le-unknown-linux-musl",
            "armv7-unknown-linux-gnueabihf",
            "armv5te-unknown-linux-gnueabi",
            "i686-unknown-linux-gnu",
            "powerpc64le-unknown-linux-gnu",
            "s390x-unknown-linux-gnu",
            "mips64el-unknown-linux-gnuabi64",
            "aarch64-apple-darwin",
            "x86_64-apple-darwin",
        ] {
            assert!(triples.contains(&triple), "{triple} missing");
        }
        for target in m.targets.iter().filter(|t| t.os == "linux") {
            let isa = target.isa().unwrap_or_else(|| panic!("{} has no ISA", target.triple));
            assert_eq!(isa.triple, target.triple);
        }
    }

    #[test]
    fn a_linux_target_without_a_known_isa_is_refused() {
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/targets.toml")).unwrap();
        let bad = text.replacen("triple = \"s390x-unknown-linux-gnu\"", "triple = \"sparc64-unknown-linux-gnu\"", 1);
        assert!(matches!(Matrix::parse(&bad, "x"), Err(MatrixError::Invalid(m)) if m.contains("sparc64")));
    }

    #[test]
    fn a_cross_build_unpacks_the_targets_libraries_into_its_sysroot() {
        let m = matrix();
        let version = Version::new(18, 6);
        let native = m.host_packages(m.target("x86_64-unknown-linux-gnu").unwrap(), version, "amd64");
        assert!(native.contains(&"zlib1g-dev".to_string()) && native.contains(&"libssl-dev".to_string()));
        assert!(!native.iter().any(|p| p.contains(':') || p.starts_with("crossbuild")));
        let arm64 = m.target("aarch64-unknown-linux-gnu").unwrap();
        let cross = m.host_packages(arm64, version, "amd64");
        for package in ["crossbuild-essential-arm64", "qemu-user", "pkg-config", "bison"] {
            assert!(cross.contains(&package.to_string()), "{package} missing from {cross:?}");
        }
        assert!(!cross.iter().any(|p| p.contains(':') || p.contains("-dev")), "no library on the machine: {cross:?}");
        let sysroot = m.sysroot_packages(arm64, version, "amd64");
        for package in ["zlib1g-dev:arm64", "libssl-dev:arm64", "libc6-dev:arm64", "libicu-dev:arm64"] {
            assert!(sysroot.contains(&package.to_string()), "{package} missing from {sysroot:?}");
        }
        assert!(sysroot.iter().all(|p| p.ends_with(":arm64")), "{sysroot:?}");
        assert_eq!(m.host_packages(arm64, version, "arm64"), native, "on arm64 the same target builds natively");
        assert!(m.sysroot_packages(arm64, version, "arm64").is_empty());
        let i686 = m.target("i686-unknown-linux-gnu").unwrap().debian.clone().unwrap();
        assert_eq!((i686.multiarch.as_str(), i686.gnu_type.as_str()), ("i386-linux-gnu", "i686-linux-gnu"));
        assert!(m.target("x86_64-unknown-linux-musl").unwrap().debian.is_none());
    }

    #[test]
    fn an_answer_that_is_also_listed_as_not_run_is_refused() {
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/targets.toml")).unwrap();
        let bad = text.replacen(
            "pgac_cv__libcurl_async_dns = \"libcurl (OAuth) is not built\"",
            "pgac_cv__128bit_int_bug = \"x\"",
            1,
        );
        assert!(matches!(Matrix::parse(&bad, "x"), Err(MatrixError::Invalid(m)) if m.contains("both answered")));
    }

    #[test]
    fn flags_follow_the_major() {
        let m = matrix();
        let gnu = m.target("x86_64-linux").unwrap();
        let pg13 = m.configure_flags(gnu, Version::new(13, 16));
        assert!(pg13.contains(&"--with-openssl".to_string()));
        assert!(!pg13.iter().any(|f| f == "--with-lz4" || f == "--with-zstd"));
        let pg15 = m.configure_flags(gnu, Version::new(15, 18));
        assert!(pg15.contains(&"--with-ssl=openssl".to_string()));
        assert!(pg15.contains(&"--with-lz4".to_string()) && pg15.contains(&"--with-zstd".to_string()));
        assert!(pg15.contains(&"--without-readline".to_string()));
        assert!(!pg15.iter().any(|f| f == "--with-llvm"));
    }

    #[test]
    fn unavailable_features_carry_a_reason() {
        let m = matrix();
        let gnu = m.target("x86_64-unknown-linux-gnu").unwrap();
        let features = m.features_for(gnu, Version::new(13, 16));
        assert!(!features["lz4"].enabled);
        assert!(features["lz4"].reason.as_deref().unwrap().contains("14"));
        assert!(!features["llvm-jit"].enabled && features["llvm-jit"].reason.is_some());
        assert!(features["icu"].enabled && features["icu"].reason.is_none());
    }

    #[test]
    fn names_follow_the_conventions() {
        let m = matrix();
        let t = m.target("aarch64-unknown-linux-gnu").unwrap();
        assert_eq!(t.attr_name(Version::new(17, 6)), "postgresql-17_6-aarch64-linux");
        assert_eq!(t.archive_name(Version::new(17, 6)), "postgresql-17.6.0-aarch64-unknown-linux-gnu.tar.gz");
        let cross = t.builders.iter().find(|b| b.system == "x86_64-linux").unwrap();
        assert!(cross.is_cross());
        assert_eq!(cross.package_set_path(), vec!["pkgsCross", "aarch64-multiplatform"]);
    }

    #[test]
    fn linux_targets_name_their_distribution_interpreter() {
        let m = matrix();
        let interpreter = |name: &str| m.target(name).unwrap().standard_interpreter();
        assert_eq!(interpreter("x86_64-unknown-linux-gnu"), Some("/lib64/ld-linux-x86-64.so.2"));
        assert_eq!(interpreter("aarch64-unknown-linux-gnu"), Some("/lib/ld-linux-aarch64.so.1"));
        assert_eq!(interpreter("x86_64-unknown-linux-musl"), Some("/lib/ld-musl-x86_64.so.1"));
        assert_eq!(interpreter("aarch64-unknown-linux-musl"), Some("/lib/ld-musl-aarch64.so.1"));
        assert_eq!(interpreter("aarch64-apple-darwin"), None);
    }

    #[test]
    fn rejects_unknown_feature_overrides() {
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/targets.toml")).unwrap();
        let bad = text.replacen("libc = \"musl\"", "libc = \"musl\"\ndisable = { nosuch = \"x\" }", 1);
        assert!(matches!(Matrix::parse(&bad, "x"), Err(MatrixError::Invalid(_))));
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::util::fuzz;
    use proptest::prelude::*;

    const COMMITTED: &str = include_str!("../../data/targets.toml");

    proptest! {
        #![proptest_config(fuzz::config(768))]

        #[test]
        fn fuzz_targets_mutated(mutations in fuzz::mutations(6)) {
            let text = String::from_utf8_lossy(&fuzz::apply(COMMITTED.as_bytes(), &mutations)).into_owned();
            let _ = Matrix::parse(&text, "fuzzed");
        }
    }
}
