//! pgbin: a hermetic, verifiable builder of PostgreSQL binaries.
//!
//! The library owns the data (version catalog, target matrix, source lock,
//! trust policy), verifies source authenticity, and generates the Nix data
//! the flake reads. It never prints; the `pgbin` binary formats results.
//!
//! Its folders are the pipeline's stages, and each imports only the stages
//! before it (docs/architecture.md has the map; a unit test enforces it):
//! `util` ← `data` ← `source` ← `nix` ← `build` ← `attest`, `compare`,
//! `audit` ← `pipeline`.

pub mod attest;
pub mod audit;
pub mod build;
pub mod compare;
pub mod data;
pub mod nix;
pub mod pipeline;
pub mod source;
pub mod util;

#[cfg(test)]
mod layering {
    //! Dependencies point one way: a stage may use only the stages before
    //! it. Every `crate::STAGE` path in a stage's files is checked.

    use std::path::Path;

    /// Each stage and the stages it may use (besides itself).
    const ALLOWED: &[(&str, &[&str])] = &[
        ("util", &[]),
        ("data", &["util"]),
        ("source", &["util", "data"]),
        ("nix", &["util", "data", "source"]),
        ("build", &["util", "data", "source", "nix"]),
        ("attest", &["util", "data", "source", "nix", "build"]),
        ("compare", &["util", "data", "source", "nix", "build"]),
        ("audit", &["util", "data", "source", "nix", "build"]),
        ("pipeline", &["util", "data", "source", "nix", "build", "attest", "compare"]),
    ];

    /// The stages a file refers to through `crate::STAGE`, outside comments.
    fn referenced_stages(text: &str) -> Vec<String> {
        let mut found = Vec::new();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or("");
            let mut rest = code;
            while let Some(at) = rest.find("crate::") {
                rest = &rest[at + "crate::".len()..];
                let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                found.push(name);
            }
        }
        found
    }

    #[test]
    fn no_stage_uses_a_later_stage() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut violations = Vec::new();
        let mut checked = 0;
        for (stage, allowed) in ALLOWED {
            for entry in walkdir::WalkDir::new(src.join(stage)) {
                let entry = entry.unwrap();
                if entry.path().extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                checked += 1;
                let text = std::fs::read_to_string(entry.path()).unwrap();
                for used in referenced_stages(&text) {
                    if used != *stage && !allowed.contains(&used.as_str()) {
                        violations.push(format!("{} uses crate::{used}", entry.path().display()));
                    }
                }
            }
        }
        assert!(checked > 40, "only {checked} files found under src/");
        assert!(violations.is_empty(), "stages used against the order:\n{}", violations.join("\n"));
    }

    #[test]
    fn every_stage_folder_is_in_the_order() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        for entry in std::fs::read_dir(&src).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            if entry.file_type().unwrap().is_dir() && name != "commands" {
                assert!(ALLOWED.iter().any(|(stage, _)| *stage == name), "src/{name} is not in the stage order");
            }
        }
    }

    #[test]
    fn the_check_sees_a_use_of_a_later_stage() {
        assert_eq!(referenced_stages("use crate::pipeline::build; // crate::nix"), vec!["pipeline"]);
    }
}
