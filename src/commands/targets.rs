//! `pgbin targets`: the target matrix.

use std::collections::BTreeMap;

use serde::Serialize;

use pgbin::data::matrix::{Builder, FeatureState};

use super::{Context, Failure, print_json};

/// Arguments of `pgbin targets`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show feature states for this version's major (default: the newest catalogued release)
    #[arg(long, value_name = "VERSION")]
    version: Option<String>,
    /// Machine-readable output
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct TargetView<'a> {
    triple: &'a str,
    attr_suffix: &'a str,
    os: &'a str,
    libc: &'a str,
    builders: Vec<BuilderView<'a>>,
    features: BTreeMap<String, FeatureState>,
    configure_flags: Vec<String>,
    archive_name: String,
    attr_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    isa: Option<IsaView>,
    /// The Debian architecture the host backend builds it with (natively
    /// or with Debian's cross toolchain), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    debian: Option<&'a pgbin::data::matrix::DebianArch>,
    /// Why no archive of it is offered, when withheld.
    #[serde(skip_serializing_if = "Option::is_none")]
    withheld: Option<&'a str>,
}

/// What every ELF file of a target declares (`pgbin::data::isa`).
#[derive(Debug, Serialize)]
struct IsaView {
    baseline: &'static str,
    elf: String,
    interpreter: &'static str,
}

#[derive(Debug, Serialize)]
struct BuilderView<'a> {
    system: &'a str,
    package_set: &'a str,
    cross: bool,
}

#[derive(Debug, Serialize)]
struct Listing<'a> {
    version: String,
    targets: Vec<TargetView<'a>>,
}

fn builder_view(b: &Builder) -> BuilderView<'_> {
    BuilderView { system: &b.system, package_set: &b.package_set, cross: b.is_cross() }
}

/// Runs the command.
pub fn run(ctx: &Context, args: Args) -> Result<(), Failure> {
    let project = ctx.project()?;
    let version = match &args.version {
        Some(text) => super::exact_version(text)?,
        None => project
            .catalog
            .releases()
            .map(|(_, r)| r.version)
            .max()
            .ok_or_else(|| Failure::usage("the catalog is empty"))?,
    };
    let matrix = &project.matrix;
    let targets: Vec<TargetView> = matrix
        .targets
        .iter()
        .map(|t| TargetView {
            triple: &t.triple,
            attr_suffix: &t.attr_suffix,
            os: &t.os,
            libc: &t.libc,
            builders: t.builders.iter().map(builder_view).collect(),
            features: matrix.features_for(t, version),
            configure_flags: matrix.configure_flags(t, version),
            archive_name: t.archive_name(version),
            attr_name: t.attr_name(version),
            isa: t.isa().map(|isa| IsaView {
                baseline: isa.baseline,
                elf: isa.describe(),
                interpreter: isa.interpreter,
            }),
            debian: t.debian.as_ref(),
            withheld: t.withheld.as_deref(),
        })
        .collect();
    if args.json {
        print_json(&Listing { version: version.to_string(), targets })?;
        return Ok(());
    }
    println!("Targets for PostgreSQL {version}:");
    for t in &targets {
        let on: Vec<&str> = t.features.iter().filter(|(_, s)| s.enabled).map(|(n, _)| n.as_str()).collect();
        let off: Vec<&str> = t.features.iter().filter(|(_, s)| !s.enabled).map(|(n, _)| n.as_str()).collect();
        let builders: Vec<String> = t.builders.iter().map(|b| format!("{} ({})", b.system, b.package_set)).collect();
        println!("\n{}  [{}]  libc: {}", t.triple, t.attr_name, t.libc);
        println!("  built on: {}", builders.join(", "));
        println!("  features on:  {}", on.join(" "));
        println!("  features off: {}", off.join(" "));
        match t.withheld {
            Some(reason) => println!("  withheld: {reason}"),
            None => println!("  archive: {}", t.archive_name),
        }
        if let Some(isa) = &t.isa {
            println!("  isa: {} ({}; {})", isa.baseline, isa.elf, isa.interpreter);
        }
        if let Some(debian) = t.debian {
            println!("  host backend: Debian {} ({}-gcc)", debian.arch, debian.gnu_type);
        }
    }
    println!("\nWhy features are off: pgbin targets --json");
    Ok(())
}
