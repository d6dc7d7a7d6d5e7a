//! The ISA check: every ELF file in a tree declares the machine, class,
//! byte order, ABI (`e_flags`) and program interpreter of the target its
//! archive is named for ([`crate::data::isa`]). A file built for anything
//! else fails the check, named with what it really is, so an archive
//! labelled for one architecture can never carry another's code.

use std::io::Read;
use std::path::Path;

use goblin::elf::Elf;
use goblin::elf::header::{EI_CLASS, EI_DATA, ELFCLASS64, ELFDATA2LSB};
use serde::{Deserialize, Serialize};

use crate::data::isa::{
    EF_ARM_ABI_FLOAT_HARD, EF_ARM_ABI_FLOAT_SOFT, EF_ARM_EABIMASK, EF_MIPS_ABI, EF_MIPS_ABI2, EF_PPC64_ABI, EM_ARM,
    EM_MIPS, EM_PPC64, ISAS, Isa,
};
use crate::util::error::{Classify, FailureKind};
use crate::util::io::{IoError, context};

/// Why a tree failed the ISA check, or could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum IsaError {
    /// Local I/O.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The target has no known instruction set.
    #[error("no instruction set is known for target {0}")]
    UnknownTarget(String),
    /// A file is built for another instruction set.
    #[error("{path} is {found}, not {expected} as {triple} requires")]
    Mismatch {
        /// The file, relative to the checked tree.
        path: String,
        /// What it declares.
        found: String,
        /// What the target requires.
        expected: String,
        /// The target.
        triple: String,
    },
    /// A file starts like ELF but cannot be parsed.
    #[error("{path} starts like an ELF file but is not a readable one: {message}")]
    Unreadable {
        /// The file, relative to the checked tree.
        path: String,
        /// The parser's message.
        message: String,
    },
}

impl Classify for IsaError {
    fn kind(&self) -> FailureKind {
        match self {
            IsaError::Mismatch { .. } | IsaError::Unreadable { .. } => FailureKind::Check,
            IsaError::Io(_) | IsaError::UnknownTarget(_) => FailureKind::Usage,
        }
    }
}

/// What the manifest records of a passed check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsaRecord {
    /// The baseline the target's code is built for
    /// (`armv7-a+vfpv3-d16, hard float`).
    pub baseline: String,
    /// The ELF identity every file declared
    /// (`ARM, ELF32, little-endian, EABI5, hard float`).
    pub elf: String,
    /// The program interpreter of every executable.
    pub interpreter: String,
    /// How many ELF files were checked.
    pub elf_files: usize,
}

/// The ABI that `e_flags` declares for `machine`, in words, where the
/// processor supplement puts one there.
fn abi_of(machine: u16, class64: bool, flags: u32) -> Option<String> {
    match machine {
        EM_ARM => {
            let version = (flags & EF_ARM_EABIMASK) >> 24;
            let float = match flags & (EF_ARM_ABI_FLOAT_SOFT | EF_ARM_ABI_FLOAT_HARD) {
                EF_ARM_ABI_FLOAT_HARD => "hard float",
                EF_ARM_ABI_FLOAT_SOFT => "soft float",
                0 => "float ABI unmarked",
                _ => "both float ABIs marked",
            };
            Some(if version == 0 { format!("no EABI version, {float}") } else { format!("EABI{version}, {float}") })
        }
        EM_PPC64 => Some(match flags & EF_PPC64_ABI {
            0 => "ABI unmarked".to_string(),
            version => format!("ELFv{version}"),
        }),
        EM_MIPS => Some(
            match (class64, flags & EF_MIPS_ABI2 != 0, flags & EF_MIPS_ABI) {
                (true, false, 0) => "n64",
                (_, true, _) => "n32",
                (false, false, 0x1000) => "o32",
                (_, false, 0x2000) => "o64",
                (false, false, 0) => "o32 (unmarked)",
                _ => "EABI",
            }
            .to_string(),
        ),
        _ => None,
    }
}

/// The identity an ELF file declares, in the words of
/// [`Isa::describe`]: `x86-64, ELF64, little-endian`.
fn describe(elf: &Elf) -> String {
    let machine = elf.header.e_machine;
    let class64 = elf.header.e_ident[EI_CLASS] == ELFCLASS64;
    let name = ISAS
        .iter()
        .find(|isa| isa.machine == machine)
        .map_or_else(|| goblin::elf::header::machine_to_str(machine).to_string(), |isa| isa.machine_name.to_string());
    let mut text = format!(
        "{name}, {}, {}",
        if class64 { "ELF64" } else { "ELF32" },
        if elf.header.e_ident[EI_DATA] == ELFDATA2LSB { "little-endian" } else { "big-endian" }
    );
    if let Some(abi) = abi_of(machine, class64, elf.header.e_flags) {
        text.push_str(", ");
        text.push_str(&abi);
    }
    text
}

/// Checks the ELF file `bytes` (named `path` in errors) against `isa`.
pub fn check_bytes(bytes: &[u8], path: &str, isa: &Isa) -> Result<(), IsaError> {
    let elf = Elf::parse(bytes)
        .map_err(|e| IsaError::Unreadable { path: path.to_string(), message: e.to_string().replace('\n', " ") })?;
    let header = &elf.header;
    let matches = header.e_machine == isa.machine
        && (header.e_ident[EI_CLASS] == ELFCLASS64) == isa.class64
        && (header.e_ident[EI_DATA] == ELFDATA2LSB) == isa.little_endian
        && (header.e_flags & isa.abi_mask == isa.abi_value
            || isa.abi_unmarked_ok && header.e_flags & isa.abi_mask == 0);
    let mismatch = |found: String, expected: String| IsaError::Mismatch {
        path: path.to_string(),
        found,
        expected,
        triple: isa.triple.to_string(),
    };
    if !matches {
        return Err(mismatch(describe(&elf), isa.describe()));
    }
    if let Some((newest, newest_name)) = isa.arm_max_cpu_arch
        && let Some(declared) = arm_cpu_arch(&elf, bytes)
        && declared > newest
        && run_time_selected_arch(&elf).is_none_or(|allowed| declared > allowed)
    {
        return Err(mismatch(
            format!("ARM code for {} (Tag_CPU_arch {declared})", arm_cpu_arch_name(declared)),
            format!("code for {newest_name} or older"),
        ));
    }
    match elf.interpreter {
        Some(interpreter) if interpreter != isa.interpreter => Err(mismatch(
            format!("an executable for the interpreter {interpreter}"),
            format!("one for {}", isa.interpreter),
        )),
        _ => Ok(()),
    }
}

/// `Tag_CPU_arch` of ARMv8-A.
const ARM_CPU_ARCH_V8A: u64 = 14;

/// PostgreSQL's CRC-32C with the ARMv8 CRC instructions, compiled with
/// `-march=armv8-a+crc` and called only after a run-time check of the CPU
/// (`USE_ARMV8_CRC32C_WITH_RUNTIME_CHECK`). The linker merges the build
/// attributes of every object to their newest, so a file holding it
/// declares ARMv8-A although it runs on the target's baseline; such a file
/// may declare up to ARMv8-A.
const RUNTIME_CHECKED_ARMV8_CODE: &str = "pg_comp_crc32c_armv8";

/// `Tag_CPU_arch` of ARMv7.
const ARM_CPU_ARCH_V7: u64 = 10;

/// GCC's libatomic, which on ARM Linux holds an ARMv7 variant of each
/// atomic operation, chosen by IFUNC only when the CPU has the exclusive
/// byte, half-word and double-word loads and stores (gcc's
/// libatomic/config/linux/arm/host-config.h: "Alternative 1 is
/// -march=armv7-a"); Debian's armel `libatomic1` declares ARMv7 for it.
const RUNTIME_SELECTED_ARMV7_LIBRARY: &str = "libatomic.so.1";

/// `STT_GNU_IFUNC`: a symbol whose address a resolver picks at load time.
const STT_GNU_IFUNC: u8 = 10;

/// The newest `Tag_CPU_arch` a file may declare because the newer code in
/// it runs only after a run-time check of the CPU: PostgreSQL's ARMv8
/// CRC-32C ([`RUNTIME_CHECKED_ARMV8_CODE`]), GCC's libatomic with its IFUNC
/// alternatives ([`RUNTIME_SELECTED_ARMV7_LIBRARY`]).
fn run_time_selected_arch(elf: &Elf) -> Option<u64> {
    if defines(elf, RUNTIME_CHECKED_ARMV8_CODE) {
        return Some(ARM_CPU_ARCH_V8A);
    }
    let ifunc = elf.dynsyms.iter().any(|s| s.st_shndx != 0 && s.st_type() == STT_GNU_IFUNC);
    (elf.soname == Some(RUNTIME_SELECTED_ARMV7_LIBRARY) && ifunc).then_some(ARM_CPU_ARCH_V7)
}

/// Whether `elf` defines the symbol `name` (in `.symtab` or `.dynsym`).
fn defines(elf: &Elf, name: &str) -> bool {
    let defined = |sym: &goblin::elf::Sym, table: &goblin::strtab::Strtab| {
        sym.st_shndx != 0 && table.get_at(sym.st_name) == Some(name)
    };
    elf.syms.iter().any(|s| defined(&s, &elf.strtab)) || elf.dynsyms.iter().any(|s| defined(&s, &elf.dynstrtab))
}

/// `SHT_ARM_ATTRIBUTES`: the section type of `.ARM.attributes`.
const SHT_ARM_ATTRIBUTES: u32 = 0x7000_0003;

/// The `Tag_CPU_arch` an ARM file's public (`aeabi`) file attributes
/// declare, if it has any. Malformed attributes declare nothing: the ABI
/// bits of `e_flags` were checked already, and nothing here allocates or
/// reads beyond the section.
fn arm_cpu_arch(elf: &Elf, bytes: &[u8]) -> Option<u64> {
    let section = elf.section_headers.iter().find(|s| s.sh_type == SHT_ARM_ATTRIBUTES)?;
    let start = usize::try_from(section.sh_offset).ok()?;
    let data = bytes.get(start..start.checked_add(usize::try_from(section.sh_size).ok()?)?)?;
    let little = elf.little_endian;
    let u32_at = |d: &[u8], at: usize| -> Option<usize> {
        let raw: [u8; 4] = d.get(at..at + 4)?.try_into().ok()?;
        usize::try_from(if little { u32::from_le_bytes(raw) } else { u32::from_be_bytes(raw) }).ok()
    };
    let (&format, mut rest) = data.split_first()?;
    if format != b'A' {
        return None;
    }
    while rest.len() >= 4 {
        let length = u32_at(rest, 0)?;
        let vendor_section = rest.get(4..length)?;
        rest = &rest[length..];
        let nul = vendor_section.iter().position(|&b| b == 0)?;
        if &vendor_section[..nul] != b"aeabi" {
            continue;
        }
        let mut sub = &vendor_section[nul + 1..];
        while sub.len() >= 5 {
            let (tag, size) = (sub[0], u32_at(sub, 1)?);
            let body = sub.get(5..size)?;
            sub = &sub[size..];
            if tag == 1 {
                return file_attribute(body, 6);
            }
        }
    }
    None
}

/// The value of the integer attribute `wanted` in an attribute list.
fn file_attribute(mut list: &[u8], wanted: u64) -> Option<u64> {
    fn uleb(data: &mut &[u8]) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = data.split_first()?;
            *data = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }
    fn skip_string(data: &mut &[u8]) -> Option<()> {
        let nul = data.iter().position(|&b| b == 0)?;
        *data = &data[nul + 1..];
        Some(())
    }
    while !list.is_empty() {
        let tag = uleb(&mut list)?;
        match tag {
            // Tag_CPU_raw_name, Tag_CPU_name, Tag_also_compatible_with, Tag_conformance.
            4 | 5 | 65 | 67 => skip_string(&mut list)?,
            // Tag_compatibility: a flag, then a vendor name.
            32 => {
                uleb(&mut list)?;
                skip_string(&mut list)?;
            }
            t if t > 32 && t % 2 == 1 => skip_string(&mut list)?,
            _ => {
                let value = uleb(&mut list)?;
                if tag == wanted {
                    return Some(value);
                }
            }
        }
    }
    None
}

/// The architecture a `Tag_CPU_arch` value names.
fn arm_cpu_arch_name(value: u64) -> &'static str {
    match value {
        0 => "pre-v4",
        1 => "v4",
        2 => "v4T",
        3 => "v5T",
        4 => "v5TE",
        5 => "v5TEJ",
        6 => "v6",
        7 => "v6KZ",
        8 => "v6T2",
        9 => "v6K",
        10 => "v7",
        11 => "v6-M",
        12 => "v6S-M",
        13 => "v7E-M",
        14 => "v8-A",
        _ => "a later architecture",
    }
}

/// Checks every regular ELF file under `root` (links are not followed)
/// against `isa`, each read up to [`crate::build::elf::MAX_ELF_BYTES`];
/// errors name files relative to `root`.
pub fn check_tree(root: &Path, isa: &Isa) -> Result<IsaRecord, IsaError> {
    let mut elf_files = 0;
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let entry = entry.map_err(|e| IoError::new(format!("cannot walk {}", root.display()), e))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let relative = entry.path().strip_prefix(root).unwrap_or(entry.path()).display().to_string();
        let mut magic = Vec::with_capacity(4);
        std::fs::File::open(entry.path())
            .and_then(|file| file.take(4).read_to_end(&mut magic))
            .map_err(context(format!("cannot read {relative}")))?;
        if !crate::build::elf::is_elf(&magic) {
            continue;
        }
        let bytes = crate::util::io::read_limited(entry.path(), crate::build::elf::MAX_ELF_BYTES)?;
        check_bytes(&bytes, &relative, isa)?;
        elf_files += 1;
    }
    Ok(IsaRecord {
        baseline: isa.baseline.to_string(),
        elf: isa.describe(),
        interpreter: isa.interpreter.to_string(),
        elf_files,
    })
}

/// [`check_tree`] against the ISA of `triple`.
pub fn check_tree_for(root: &Path, triple: &str) -> Result<IsaRecord, IsaError> {
    let isa = crate::data::isa::for_triple(triple).ok_or_else(|| IsaError::UnknownTarget(triple.to_string()))?;
    check_tree(root, isa)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::isa::for_triple;

    /// The committed fixtures (tests/fixtures/isa/README.md): one tiny real
    /// executable per target, made with Debian's cross toolchains.
    fn fixture(triple: &str) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/isa").join(format!("{triple}.elf"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    const FIXTURES: &[&str] = &[
        "x86_64-unknown-linux-gnu",
        "aarch64-unknown-linux-gnu",
        "armv7-unknown-linux-gnueabihf",
        "armv5te-unknown-linux-gnueabi",
        "mips64el-unknown-linux-gnuabi64",
        "i686-unknown-linux-gnu",
        "powerpc64le-unknown-linux-gnu",
        "s390x-unknown-linux-gnu",
    ];

    #[test]
    fn each_fixture_passes_its_own_target_and_fails_every_other() {
        for own in FIXTURES {
            let bytes = fixture(own);
            check_bytes(&bytes, "bin/x", for_triple(own).unwrap()).unwrap();
            for other in FIXTURES.iter().filter(|o| *o != own) {
                let error = check_bytes(&bytes, "bin/x", for_triple(other).unwrap()).unwrap_err();
                assert!(matches!(error, IsaError::Mismatch { .. }), "{own} as {other}: {error}");
                assert_eq!(error.kind(), FailureKind::Check);
            }
        }
    }

    /// The message of checking the fixture of `built` as a file of `named`.
    fn refusal(built: &str, named: &str) -> String {
        check_bytes(&fixture(built), "bin/postgres", for_triple(named).unwrap()).unwrap_err().to_string()
    }

    #[test]
    fn mislabelled_binaries_are_named_with_what_they_are() {
        assert_eq!(
            refusal("armv7-unknown-linux-gnueabihf", "armv5te-unknown-linux-gnueabi"),
            "bin/postgres is ARM, ELF32, little-endian, EABI5, hard float, not ARM, ELF32, little-endian, \
             EABI5, soft float as armv5te-unknown-linux-gnueabi requires"
        );
        let x86 = refusal("x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu");
        assert!(x86.starts_with("bin/postgres is x86-64, ELF64, little-endian, not AArch64"), "{x86}");
        // The x86_64 glibc fixture checked as musl: same machine, other loader.
        let loader = refusal("x86_64-unknown-linux-gnu", "x86_64-unknown-linux-musl");
        assert!(loader.contains("interpreter /lib64/ld-linux-x86-64.so.2"), "{loader}");
        let mips = refusal("mips64el-unknown-linux-gnuabi64", "powerpc64le-unknown-linux-gnu");
        assert!(mips.starts_with("bin/postgres is MIPS, ELF64, little-endian, n64"), "{mips}");
    }

    #[test]
    fn armv7_code_under_the_soft_float_abi_is_not_armv5te() {
        let armv5te = for_triple("armv5te-unknown-linux-gnueabi").unwrap();
        let mut bytes = fixture("armv5te-unknown-linux-gnueabi");
        check_bytes(&bytes, "bin/postgres", armv5te).unwrap();
        // The fixture's attributes say Tag_CPU_arch v5TE (6, then 4): make them say v7.
        let elf = Elf::parse(&bytes).unwrap();
        assert_eq!(arm_cpu_arch(&elf, &bytes), Some(4));
        let section = elf.section_headers.iter().find(|s| s.sh_type == SHT_ARM_ATTRIBUTES).unwrap();
        let range = section.sh_offset as usize..(section.sh_offset + section.sh_size) as usize;
        let at = bytes[range.clone()].windows(2).position(|w| w == [6, 4]).unwrap() + range.start;
        bytes[at + 1] = 10;
        let error = check_bytes(&bytes, "bin/postgres", armv5te).unwrap_err().to_string();
        assert_eq!(
            error,
            "bin/postgres is ARM code for v7 (Tag_CPU_arch 10), not code for v5TE or older as \
             armv5te-unknown-linux-gnueabi requires"
        );
        // The ARMv7 fixture passes as ARMv7 by its attributes.
        let armv7 = fixture("armv7-unknown-linux-gnueabihf");
        assert_eq!(arm_cpu_arch(&Elf::parse(&armv7).unwrap(), &armv7), Some(10));
        // Strings are skipped; unfinished attributes declare nothing.
        assert_eq!(file_attribute(&[5, b'7', 0, 6, 10], 6), Some(10));
        assert_eq!(file_attribute(&[6, 0x84], 6), None);
        assert_eq!(file_attribute(&[5, b'7'], 6), None);
    }

    #[test]
    fn only_the_run_time_checked_crc_code_may_declare_armv8_in_an_armv7_archive() {
        let armv7 = for_triple("armv7-unknown-linux-gnueabihf").unwrap();
        let mut bytes = fixture("armv7-crc32c-armv8");
        assert_eq!(arm_cpu_arch(&Elf::parse(&bytes).unwrap(), &bytes), Some(ARM_CPU_ARCH_V8A));
        check_bytes(&bytes, "bin/pg_checksums", armv7).unwrap();
        // The same file without PostgreSQL's CRC-32C symbol is ARMv8 code.
        let name = RUNTIME_CHECKED_ARMV8_CODE.as_bytes();
        let at = bytes.windows(name.len()).position(|w| w == name).unwrap();
        bytes[at + name.len() - 1] = b'9';
        let error = check_bytes(&bytes, "bin/pg_checksums", armv7).unwrap_err().to_string();
        assert!(error.starts_with("bin/pg_checksums is ARM code for v8-A (Tag_CPU_arch 14)"), "{error}");
    }

    #[test]
    fn gccs_libatomic_may_declare_its_ifunc_selected_armv7_code_in_an_armv5te_archive() {
        let armv5te = for_triple("armv5te-unknown-linux-gnueabi").unwrap();
        let mut bytes = fixture("armv5te-libatomic-ifunc");
        assert_eq!(arm_cpu_arch(&Elf::parse(&bytes).unwrap(), &bytes), Some(ARM_CPU_ARCH_V7));
        check_bytes(&bytes, "lib/libatomic.so.1", armv5te).unwrap();
        // Another library with the same code is ARMv7 code.
        let at = bytes.windows(14).position(|w| w == b"libatomic.so.1").unwrap();
        bytes[at + 3] = b'X';
        let error = check_bytes(&bytes, "lib/libXtomic.so.1", armv5te).unwrap_err().to_string();
        assert!(error.starts_with("lib/libXtomic.so.1 is ARM code for v7 (Tag_CPU_arch 10)"), "{error}");
    }

    #[test]
    fn powerpc64_accepts_elfv2_and_unmarked_and_refuses_elfv1() {
        let isa = for_triple("powerpc64le-unknown-linux-gnu").unwrap();
        let mut bytes = fixture("powerpc64le-unknown-linux-gnu");
        // e_flags of an ELF64 file: bytes 48..52, in its byte order.
        assert_eq!(bytes[48..52], [2, 0, 0, 0]);
        for (flags, accepted) in [(0u8, true), (1, false), (2, true)] {
            bytes[48] = flags;
            let result = check_bytes(&bytes, "lib/libpq.so.5", isa);
            assert_eq!(result.is_ok(), accepted, "e_flags {flags}: {result:?}");
        }
        bytes[48] = 1;
        let error = check_bytes(&bytes, "lib/libpq.so.5", isa).unwrap_err().to_string();
        assert!(error.starts_with("lib/libpq.so.5 is PowerPC64, ELF64, little-endian, ELFv1, not"), "{error}");
    }

    #[test]
    fn a_truncated_elf_is_unreadable_not_skipped() {
        let bytes = fixture("aarch64-unknown-linux-gnu");
        let error =
            check_bytes(&bytes[..40], "lib/x.so", for_triple("aarch64-unknown-linux-gnu").unwrap()).unwrap_err();
        assert!(matches!(error, IsaError::Unreadable { .. }), "{error}");
        assert!(!error.to_string().contains('\n'));
    }

    #[test]
    fn a_tree_is_checked_file_by_file_and_links_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        std::fs::create_dir_all(dir.path().join("share")).unwrap();
        std::fs::write(dir.path().join("bin/postgres"), fixture("aarch64-unknown-linux-gnu")).unwrap();
        std::fs::write(dir.path().join("share/readme"), b"text").unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, fixture("x86_64-unknown-linux-gnu")).unwrap();
        std::os::unix::fs::symlink(&outside, dir.path().join("bin/link")).unwrap();
        std::fs::remove_file(&outside).unwrap();
        let record = check_tree_for(dir.path(), "aarch64-unknown-linux-gnu").unwrap();
        assert_eq!(record.elf_files, 1);
        assert_eq!(record.baseline, "armv8-a");
        std::fs::write(dir.path().join("bin/pg_dump"), fixture("x86_64-unknown-linux-gnu")).unwrap();
        let error = check_tree_for(dir.path(), "aarch64-unknown-linux-gnu").unwrap_err();
        assert!(error.to_string().starts_with("bin/pg_dump is x86-64"), "{error}");
        assert!(matches!(check_tree_for(dir.path(), "sparc-sun-solaris"), Err(IsaError::UnknownTarget(_))));
    }
}
