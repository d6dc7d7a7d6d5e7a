//! ELF inspection with goblin: dependencies, search paths, the glibc
//! symbol-version floor and the hardening properties of each file.

use std::path::Path;

use goblin::elf::Elf;
use goblin::elf::dynamic::{DF_1_NOW, DF_BIND_NOW};
use goblin::elf::header::ET_DYN;
use goblin::elf::program_header::{PF_X, PT_GNU_RELRO, PT_GNU_STACK};
use serde::Serialize;

/// What pgbin needs to know about one ELF file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ElfInfo {
    /// `DT_SONAME`, for shared libraries.
    pub soname: Option<String>,
    /// `DT_NEEDED` entries, in order.
    pub needed: Vec<String>,
    /// `DT_RUNPATH` (and legacy `DT_RPATH`) entries.
    pub runpath: Vec<String>,
    /// The program interpreter, for executables.
    pub interpreter: Option<String>,
    /// Highest `GLIBC_x.y` version required, as (major, minor).
    pub glibc_floor: Option<(u32, u32)>,
    /// Hardening properties.
    pub hardening: Hardening,
    /// A MIPS file whose `DT_MIPS_RLD_MAP_REL` does not point at `.rld_map`
    /// ([`mips_rld_map_repair`] would change it).
    pub mips_rld_map_wrong: bool,
}

/// Hardening properties of one ELF file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hardening {
    /// Position independent: `ET_DYN` (a PIE executable or a shared object).
    pub pie: bool,
    /// `PT_GNU_RELRO` present.
    pub relro: bool,
    /// Immediate binding (`DF_BIND_NOW` or `DF_1_NOW`); with RELRO: full RELRO.
    pub bind_now: bool,
    /// References `__stack_chk_fail` (built with a stack protector).
    pub stack_protector: bool,
    /// The stack is not executable (`PT_GNU_STACK` without `PF_X`).
    pub nx: bool,
}

/// Problems reading an ELF file.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    /// Could not read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// Path.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// Not parseable.
    #[error("{path} is not a readable ELF file: {message}")]
    Parse {
        /// Path.
        path: String,
        /// Parser message.
        message: String,
    },
}

/// Whether `bytes` start with the ELF magic.
pub fn is_elf(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x7fELF")
}

/// Whether the file at `path` starts with the ELF magic.
pub fn file_is_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && is_elf(&magic)
}

/// Whether the file at `path` is a MIPS ELF file (`e_machine` 8, read
/// from its header in either byte order).
pub fn file_is_mips(path: &Path) -> bool {
    use std::io::Read;
    let mut header = [0u8; 20];
    if std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut header)).is_err() || !is_elf(&header) {
        return false;
    }
    let machine = if header[5] == 2 {
        u16::from_be_bytes([header[18], header[19]])
    } else {
        u16::from_le_bytes([header[18], header[19]])
    };
    machine == goblin::elf::header::EM_MIPS
}

/// Parses `GLIBC_2.34` into (2, 34).
fn glibc_version(name: &str) -> Option<(u32, u32)> {
    let rest = name.strip_prefix("GLIBC_")?;
    let mut parts = rest.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().unwrap_or("0").parse().ok()?;
    Some((major, minor))
}

/// Inspects ELF bytes.
pub fn inspect_bytes(bytes: &[u8], name: &str) -> Result<ElfInfo, ElfError> {
    let elf = Elf::parse(bytes).map_err(|e| ElfError::Parse { path: name.to_string(), message: e.to_string() })?;
    let mut glibc_floor = None;
    if let Some(verneed) = &elf.verneed {
        for need in verneed.iter() {
            for aux in need.iter() {
                if let Some(version) = elf.dynstrtab.get_at(aux.vna_name).and_then(glibc_version) {
                    glibc_floor = glibc_floor.max(Some(version));
                }
            }
        }
    }
    let (flags, flags_1) = elf.dynamic.as_ref().map_or((0, 0), |d| (d.info.flags, d.info.flags_1));
    let stack_protector = elf.dynsyms.iter().any(|sym| elf.dynstrtab.get_at(sym.st_name) == Some("__stack_chk_fail"));
    let hardening = Hardening {
        pie: elf.header.e_type == ET_DYN,
        relro: elf.program_headers.iter().any(|p| p.p_type == PT_GNU_RELRO),
        bind_now: flags & DF_BIND_NOW != 0 || flags_1 & DF_1_NOW != 0,
        stack_protector,
        nx: elf.program_headers.iter().any(|p| p.p_type == PT_GNU_STACK && p.p_flags & PF_X == 0),
    };
    Ok(ElfInfo {
        soname: elf.soname.map(str::to_string),
        needed: elf.libraries.iter().map(|s| s.to_string()).collect(),
        runpath: elf.runpaths.iter().chain(elf.rpaths.iter()).map(|s| s.to_string()).collect(),
        interpreter: elf.interpreter.map(str::to_string),
        glibc_floor,
        hardening,
        mips_rld_map_wrong: elf.header.e_machine == goblin::elf::header::EM_MIPS
            && mips_rld_map_repair(bytes).is_some(),
    })
}

/// The largest ELF file inspected: several times PostgreSQL's largest
/// binary (about 10 MB), and above a bundled LLVM (about 130 MB).
pub const MAX_ELF_BYTES: u64 = 1 << 30;

/// Inspects the ELF file at `path` (of at most [`MAX_ELF_BYTES`]).
pub fn inspect(path: &Path) -> Result<ElfInfo, ElfError> {
    let bytes = crate::util::io::read_limited(path, MAX_ELF_BYTES)
        .map_err(|e| ElfError::Io { path: path.display().to_string(), source: e.source })?;
    inspect_bytes(&bytes, &path.display().to_string())
}

/// `DT_MIPS_RLD_MAP_REL`: where the dynamic loader stores its debugger
/// map, as an offset from the address of this dynamic entry itself.
const DT_MIPS_RLD_MAP_REL: u64 = 0x7000_0035;

/// A MIPS file's `DT_MIPS_RLD_MAP_REL` that does not point at its
/// `.rld_map`, and the bytes that make it do so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RldMapRepair {
    /// The file offset of the entry's value.
    pub offset: usize,
    /// The value's bytes, in the file's width and byte order.
    pub value: Vec<u8>,
}

/// The repair `bytes` (a MIPS ELF file) need when its `DT_MIPS_RLD_MAP_REL`
/// is not `.rld_map`'s address minus the entry's own. patchelf before 0.15
/// computes it with the entry's offset in the dynamic section added
/// instead of subtracted whenever it moves that section (NixOS/patchelf
/// #364, fixed by #365), and glibc's loader then writes its debugger map
/// pointer into whatever lies there (sysdeps/mips/dl-machine.h adds the
/// value to the entry's address), which crashed initdb's bootstrap in the
/// first mips64el build. `None` for other machines and for a correct entry.
pub fn mips_rld_map_repair(bytes: &[u8]) -> Option<RldMapRepair> {
    let elf = Elf::parse(bytes).ok()?;
    if elf.header.e_machine != goblin::elf::header::EM_MIPS {
        return None;
    }
    let dynamic = elf.program_headers.iter().find(|p| p.p_type == goblin::elf::program_header::PT_DYNAMIC)?;
    let entry_size: u64 = if elf.is_64 { 16 } else { 8 };
    let index = elf.dynamic.as_ref()?.dyns.iter().position(|d| d.d_tag == DT_MIPS_RLD_MAP_REL)? as u64;
    let rld_map = elf.section_headers.iter().find(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(".rld_map"))?;
    let entry_address = dynamic.p_vaddr.checked_add(index.checked_mul(entry_size)?)?;
    let wanted = rld_map.sh_addr.wrapping_sub(entry_address);
    let offset = usize::try_from(dynamic.p_offset.checked_add(index * entry_size + entry_size / 2)?).ok()?;
    let width = (entry_size / 2) as usize;
    let value: Vec<u8> = match (elf.is_64, elf.little_endian) {
        (true, true) => wanted.to_le_bytes().to_vec(),
        (true, false) => wanted.to_be_bytes().to_vec(),
        (false, true) => (wanted as u32).to_le_bytes().to_vec(),
        (false, false) => (wanted as u32).to_be_bytes().to_vec(),
    };
    let current = bytes.get(offset..offset.checked_add(width)?)?;
    (current != value.as_slice()).then_some(RldMapRepair { offset, value })
}

/// Repairs the file at `path` as [`mips_rld_map_repair`] says, in place;
/// returns whether it needed it. Only a MIPS file is read past its header.
pub fn repair_mips_rld_map(path: &Path) -> Result<bool, ElfError> {
    if !file_is_mips(path) {
        return Ok(false);
    }
    let io = |source: std::io::Error| ElfError::Io { path: path.display().to_string(), source };
    let bytes = crate::util::io::read_limited(path, MAX_ELF_BYTES).map_err(|e| io(e.source))?;
    let Some(repair) = mips_rld_map_repair(&bytes) else { return Ok(false) };
    use std::io::{Seek, Write};
    let mut file = std::fs::OpenOptions::new().write(true).open(path).map_err(io)?;
    file.seek(std::io::SeekFrom::Start(repair.offset as u64)).map_err(io)?;
    file.write_all(&repair.value).map_err(io)?;
    Ok(true)
}

crate::util::error::usage_errors!(ElfError);

#[cfg(test)]
mod tests {
    use super::*;

    /// The address `DT_MIPS_RLD_MAP_REL` of `bytes` points at.
    fn rld_map_target(bytes: &[u8]) -> u64 {
        let elf = Elf::parse(bytes).unwrap();
        let dynamic = elf.program_headers.iter().find(|p| p.p_type == goblin::elf::program_header::PT_DYNAMIC).unwrap();
        let dyns = &elf.dynamic.as_ref().unwrap().dyns;
        let index = dyns.iter().position(|d| d.d_tag == DT_MIPS_RLD_MAP_REL).unwrap() as u64;
        (dynamic.p_vaddr + index * 16).wrapping_add(dyns[index as usize].d_val)
    }

    #[test]
    fn a_mips_files_debugger_map_entry_is_repaired_after_patchelf_moves_the_dynamic_section() {
        let fixture =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/isa/mips64el-unknown-linux-gnuabi64.elf");
        let original = std::fs::read(&fixture).unwrap();
        assert_eq!(mips_rld_map_repair(&original), None, "the linker's entry is right");
        let rld_map = rld_map_target(&original);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("postgres");
        std::fs::write(&file, &original).unwrap();
        assert!(file_is_mips(&file) && !file_is_mips(&std::env::current_exe().unwrap()));
        // Adding a RUNPATH moves .dynamic; Debian bookworm's patchelf (0.14.3)
        // then miscomputes the entry.
        let status = std::process::Command::new("patchelf").args(["--set-rpath", "$ORIGIN/../lib"]).arg(&file).status();
        assert!(status.unwrap().success());
        let patched = std::fs::read(&file).unwrap();
        assert_ne!(rld_map_target(&patched), rld_map, "patchelf 0.14 breaks the entry (if fixed, drop this line)");
        assert!(inspect_bytes(&patched, "postgres").unwrap().mips_rld_map_wrong);
        assert!(!inspect_bytes(&original, "postgres").unwrap().mips_rld_map_wrong);
        assert!(repair_mips_rld_map(&file).unwrap());
        let repaired = std::fs::read(&file).unwrap();
        assert_eq!(rld_map_target(&repaired), rld_map, "the entry points at .rld_map again");
        assert_eq!(mips_rld_map_repair(&repaired), None);
        assert!(!repair_mips_rld_map(&file).unwrap(), "nothing more to repair");
        let others = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/isa/aarch64-unknown-linux-gnu.elf"),
        )
        .unwrap();
        assert_eq!(mips_rld_map_repair(&others), None, "only MIPS files have the entry");
    }

    #[test]
    fn reads_the_test_binary_itself() {
        let exe = std::env::current_exe().unwrap();
        let info = inspect(&exe).unwrap();
        assert!(info.needed.iter().any(|n| n.starts_with("libc.so")), "{:?}", info.needed);
        assert!(info.interpreter.is_some());
        assert!(info.glibc_floor.is_some_and(|v| v >= (2, 2)));
        assert!(info.hardening.nx);
    }

    #[test]
    fn parses_glibc_version_names() {
        assert_eq!(glibc_version("GLIBC_2.34"), Some((2, 34)));
        assert_eq!(glibc_version("GLIBC_2.2.5"), Some((2, 2)));
        assert_eq!(glibc_version("GLIBC_PRIVATE"), None);
        assert_eq!(glibc_version("OPENSSL_3.0.0"), None);
    }

    #[test]
    fn rejects_non_elf_input() {
        assert!(inspect_bytes(b"#!/bin/sh\n", "script").is_err());
        assert!(!is_elf(b"#!/bin/sh"));
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::util::fuzz;
    use proptest::prelude::*;

    /// A real dynamically linked ELF file of the build machine.
    fn seed() -> &'static [u8] {
        static SEED: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        SEED.get_or_init(|| std::fs::read("/bin/ls").expect("/bin/ls exists on every build machine"))
    }

    /// Byte ranges goblin reads: the header, program and section headers,
    /// and the dynamic sections; mutations there reach the parser.
    fn hot_ranges() -> &'static [(usize, usize)] {
        static RANGES: std::sync::OnceLock<Vec<(usize, usize)>> = std::sync::OnceLock::new();
        RANGES.get_or_init(|| {
            let bytes = seed();
            let elf = Elf::parse(bytes).unwrap();
            let header = &elf.header;
            let mut ranges = vec![(0, usize::from(header.e_ehsize))];
            let table = |offset: u64, count: u16, size: u16| {
                (offset as usize, offset as usize + usize::from(count) * usize::from(size))
            };
            ranges.push(table(header.e_phoff, header.e_phnum, header.e_phentsize));
            ranges.push(table(header.e_shoff, header.e_shnum, header.e_shentsize));
            for section in &elf.section_headers {
                let name = elf.shdr_strtab.get_at(section.sh_name).unwrap_or("");
                if [".dynamic", ".dynsym", ".dynstr", ".gnu.version_r", ".interp", ".gnu.version"].contains(&name) {
                    ranges.push((section.sh_offset as usize, (section.sh_offset + section.sh_size) as usize));
                }
            }
            ranges.retain(|(start, end)| start < end && *end <= bytes.len());
            ranges
        })
    }

    /// A change at a position inside one of the hot ranges.
    #[derive(Debug, Clone)]
    enum Hot {
        Byte(prop::sample::Index, prop::sample::Index, u8),
        Word(prop::sample::Index, prop::sample::Index, u64),
    }

    fn hot() -> impl Strategy<Value = Hot> {
        let index = any::<prop::sample::Index>;
        let word = prop_oneof![
            prop::sample::select(vec![0u64, 1, 0xffff, 0x7fff_ffff, u32::MAX as u64, 1 << 40, u64::MAX]),
            any::<u64>()
        ];
        prop_oneof![
            (index(), index(), any::<u8>()).prop_map(|(r, i, b)| Hot::Byte(r, i, b)),
            (index(), index(), word).prop_map(|(r, i, w)| Hot::Word(r, i, w)),
        ]
    }

    fn apply_hot(bytes: &mut [u8], changes: &[Hot]) {
        let ranges = hot_ranges();
        for change in changes {
            match change {
                Hot::Byte(r, i, b) => {
                    let (start, end) = ranges[r.index(ranges.len())];
                    bytes[start + i.index(end - start)] = *b;
                }
                Hot::Word(r, i, w) => {
                    let (start, end) = ranges[r.index(ranges.len())];
                    let at = (start + i.index(end - start)).min(bytes.len() - 8);
                    let width = if at % 8 == 0 { 8 } else { 4 };
                    bytes[at..at + width].copy_from_slice(&w.to_le_bytes()[..width]);
                }
            }
        }
    }

    #[test]
    fn the_seed_is_inspected() {
        let info = inspect_bytes(seed(), "/bin/ls").unwrap();
        assert!(info.needed.iter().any(|n| n.starts_with("libc.so")));
    }

    #[test]
    fn every_truncation_of_the_headers_is_an_error_or_a_result() {
        let bytes = seed();
        for len in (0..4096).chain((4096..bytes.len()).step_by(997)) {
            let _ = inspect_bytes(&bytes[..len], "truncated");
        }
    }

    proptest! {
        #![proptest_config(fuzz::config(1152))]

        #[test]
        fn fuzz_inspect_mutated_headers(changes in prop::collection::vec(hot(), 1..6)) {
            let mut bytes = seed().to_vec();
            apply_hot(&mut bytes, &changes);
            if let Err(error) = inspect_bytes(&bytes, "fuzzed") {
                prop_assert!(fuzz::one_line(&error.to_string()), "{}", error);
            }
        }

        #[test]
        fn fuzz_inspect_mutated_anywhere(mutations in fuzz::mutations(4)) {
            let _ = inspect_bytes(&fuzz::apply(seed(), &mutations), "fuzzed");
        }
    }
}
