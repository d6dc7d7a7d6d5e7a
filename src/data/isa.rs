//! The instruction set each Linux target triple stands for, as its ELF files
//! must declare it: machine, class, byte order, the ABI bits of `e_flags`
//! and the program interpreter, with the baseline the target promises.
//!
//! The values are those of the ELF specification and the processor
//! supplements (`EM_*`, `EF_ARM_*`, `EF_PPC64_ABI`, `EF_MIPS_*`, as in
//! glibc's `elf.h`), the interpreters those each glibc or musl port
//! installs, and the baselines Debian bookworm's ports build for (its
//! compilers' defaults): armhf is ARMv7-A with VFPv3-D16 and the hard-float
//! ABI, armel ARMv5TE soft-float, i386 i686, ppc64el POWER8, s390x z196,
//! mips64el MIPS64r2 with the n64 ABI.

/// `EM_386`.
pub const EM_386: u16 = 3;
/// `EM_MIPS`.
pub const EM_MIPS: u16 = 8;
/// `EM_PPC64`.
pub const EM_PPC64: u16 = 21;
/// `EM_S390`.
pub const EM_S390: u16 = 22;
/// `EM_ARM`.
pub const EM_ARM: u16 = 40;
/// `EM_X86_64`.
pub const EM_X86_64: u16 = 62;
/// `EM_AARCH64`.
pub const EM_AARCH64: u16 = 183;

/// `EF_ARM_EABIMASK`: the ARM EABI version in the top byte of `e_flags`.
pub const EF_ARM_EABIMASK: u32 = 0xff00_0000;
/// `EF_ARM_EABI_VER5`.
pub const EF_ARM_EABI_VER5: u32 = 0x0500_0000;
/// `EF_ARM_ABI_FLOAT_SOFT`: the soft-float calling convention.
pub const EF_ARM_ABI_FLOAT_SOFT: u32 = 0x200;
/// `EF_ARM_ABI_FLOAT_HARD`: floating-point arguments in VFP registers.
pub const EF_ARM_ABI_FLOAT_HARD: u32 = 0x400;
/// `EF_PPC64_ABI`: the PowerPC64 ABI version (1: ELFv1, 2: ELFv2).
pub const EF_PPC64_ABI: u32 = 3;
/// `EF_MIPS_ABI2`: the n32 ABI (absent for n64, whose objects are ELF64).
pub const EF_MIPS_ABI2: u32 = 0x20;
/// `EF_MIPS_ABI`: the o32/o64/EABI markers (none for n64).
pub const EF_MIPS_ABI: u32 = 0x0000_f000;

/// What every ELF file of one target must declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Isa {
    /// The target triple, as in archive names.
    pub triple: &'static str,
    /// `e_machine`.
    pub machine: u16,
    /// The machine's common name (`AArch64`, `ARM`).
    pub machine_name: &'static str,
    /// ELF64 (`true`) or ELF32.
    pub class64: bool,
    /// Little-endian (`true`) or big-endian.
    pub little_endian: bool,
    /// The `e_flags` bits that carry the ABI.
    pub abi_mask: u32,
    /// Their required value.
    pub abi_value: u32,
    /// Whether a file that marks no ABI in those bits is accepted too
    /// (PowerPC64: an object assembled without `.abiversion` says 0; the
    /// ABI it must not say is ELFv1).
    pub abi_unmarked_ok: bool,
    /// The ABI those bits name, in words (`EABI5, hard float`).
    pub abi_name: &'static str,
    /// The program interpreter of every executable.
    pub interpreter: &'static str,
    /// The baseline the target's code is built for
    /// (`armv7-a+vfpv3-d16, hard float`).
    pub baseline: &'static str,
    /// The architecture in the name of Debian's qemu-user emulator for it
    /// (`qemu-aarch64`, `qemu-arm`).
    pub qemu: &'static str,
    /// ARM only: the newest architecture a file's build attributes may
    /// declare (`Tag_CPU_arch` of `.ARM.attributes`, as in the ARM ELF
    /// supplement's build attributes), with its name; `e_flags` cannot tell
    /// ARMv7 code from ARMv5TE code under one float ABI.
    pub arm_max_cpu_arch: Option<(u64, &'static str)>,
}

/// `Tag_CPU_arch` values of the ARM build attributes (addenda to the ARM
/// ELF supplement): v5TE and v7.
pub const ARM_CPU_ARCH_V5TE: u64 = 4;
/// `Tag_CPU_arch` of ARMv7.
pub const ARM_CPU_ARCH_V7: u64 = 10;

const fn isa(
    triple: &'static str,
    (machine, machine_name): (u16, &'static str),
    (class64, little_endian): (bool, bool),
    (abi_mask, abi_value, abi_name, abi_unmarked_ok): (u32, u32, &'static str, bool),
    (interpreter, qemu): (&'static str, &'static str),
    baseline: &'static str,
) -> Isa {
    Isa {
        triple,
        machine,
        machine_name,
        class64,
        little_endian,
        abi_mask,
        abi_value,
        abi_unmarked_ok,
        abi_name,
        interpreter,
        baseline,
        qemu,
        arm_max_cpu_arch: None,
    }
}

/// `isa` with the newest ARM architecture its files may declare.
const fn arm_arch_at_most(mut isa: Isa, cpu_arch: u64, name: &'static str) -> Isa {
    isa.arm_max_cpu_arch = Some((cpu_arch, name));
    isa
}

const X86_64: (u16, &str) = (EM_X86_64, "x86-64");
const AARCH64: (u16, &str) = (EM_AARCH64, "AArch64");
const ARM: (u16, &str) = (EM_ARM, "ARM");
const ELF64_LE: (bool, bool) = (true, true);
const ELF32_LE: (bool, bool) = (false, true);
const NO_ABI_BITS: (u32, u32, &str, bool) = (0, 0, "", false);
const ARM_HARD: (u32, u32, &str, bool) = (
    EF_ARM_EABIMASK | EF_ARM_ABI_FLOAT_SOFT | EF_ARM_ABI_FLOAT_HARD,
    EF_ARM_EABI_VER5 | EF_ARM_ABI_FLOAT_HARD,
    "EABI5, hard float",
    false,
);
const ARM_SOFT: (u32, u32, &str, bool) = (
    EF_ARM_EABIMASK | EF_ARM_ABI_FLOAT_SOFT | EF_ARM_ABI_FLOAT_HARD,
    EF_ARM_EABI_VER5 | EF_ARM_ABI_FLOAT_SOFT,
    "EABI5, soft float",
    false,
);

/// Every Linux target whose ELF files pgbin can check.
pub const ISAS: &[Isa] = &[
    isa("x86_64-unknown-linux-gnu", X86_64, ELF64_LE, NO_ABI_BITS, ("/lib64/ld-linux-x86-64.so.2", "x86_64"), "x86-64"),
    isa("x86_64-unknown-linux-musl", X86_64, ELF64_LE, NO_ABI_BITS, ("/lib/ld-musl-x86_64.so.1", "x86_64"), "x86-64"),
    isa(
        "aarch64-unknown-linux-gnu",
        AARCH64,
        ELF64_LE,
        NO_ABI_BITS,
        ("/lib/ld-linux-aarch64.so.1", "aarch64"),
        "armv8-a",
    ),
    isa(
        "aarch64-unknown-linux-musl",
        AARCH64,
        ELF64_LE,
        NO_ABI_BITS,
        ("/lib/ld-musl-aarch64.so.1", "aarch64"),
        "armv8-a",
    ),
    arm_arch_at_most(
        isa(
            "armv7-unknown-linux-gnueabihf",
            ARM,
            ELF32_LE,
            ARM_HARD,
            ("/lib/ld-linux-armhf.so.3", "arm"),
            "armv7-a+vfpv3-d16, hard float",
        ),
        ARM_CPU_ARCH_V7,
        "v7",
    ),
    arm_arch_at_most(
        isa(
            "armv5te-unknown-linux-gnueabi",
            ARM,
            ELF32_LE,
            ARM_SOFT,
            ("/lib/ld-linux.so.3", "arm"),
            "armv5te, soft float",
        ),
        ARM_CPU_ARCH_V5TE,
        "v5TE",
    ),
    isa("i686-unknown-linux-gnu", (EM_386, "i386"), ELF32_LE, NO_ABI_BITS, ("/lib/ld-linux.so.2", "i386"), "i686"),
    isa("i686-unknown-linux-musl", (EM_386, "i386"), ELF32_LE, NO_ABI_BITS, ("/lib/ld-musl-i386.so.1", "i386"), "i686"),
    isa(
        "powerpc64le-unknown-linux-gnu",
        (EM_PPC64, "PowerPC64"),
        ELF64_LE,
        (EF_PPC64_ABI, 2, "ELFv2", true),
        ("/lib64/ld64.so.2", "ppc64le"),
        "power8, ELFv2",
    ),
    isa(
        "powerpc64le-unknown-linux-musl",
        (EM_PPC64, "PowerPC64"),
        ELF64_LE,
        (EF_PPC64_ABI, 2, "ELFv2", true),
        ("/lib/ld-musl-powerpc64le.so.1", "ppc64le"),
        "power8, ELFv2",
    ),
    isa("s390x-unknown-linux-gnu", (EM_S390, "s390x"), (true, false), NO_ABI_BITS, ("/lib/ld64.so.1", "s390x"), "z196"),
    isa(
        "mips64el-unknown-linux-gnuabi64",
        (EM_MIPS, "MIPS"),
        ELF64_LE,
        (EF_MIPS_ABI2 | EF_MIPS_ABI, 0, "n64", false),
        ("/lib64/ld.so.1", "mips64el"),
        "mips64r2, n64",
    ),
];

/// The ISA of `triple`, if pgbin knows it.
pub fn for_triple(triple: &str) -> Option<&'static Isa> {
    ISAS.iter().find(|isa| isa.triple == triple)
}

impl Isa {
    /// The whole ISA in words: `ARM, ELF32, little-endian, EABI5, hard float`.
    pub fn describe(&self) -> String {
        let mut text = format!(
            "{}, {}, {}",
            self.machine_name,
            if self.class64 { "ELF64" } else { "ELF32" },
            if self.little_endian { "little-endian" } else { "big-endian" }
        );
        if !self.abi_name.is_empty() {
            text.push_str(", ");
            text.push_str(self.abi_name);
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triples_are_unique_and_abi_values_fit_their_masks() {
        let mut triples: Vec<&str> = ISAS.iter().map(|i| i.triple).collect();
        triples.sort();
        triples.dedup();
        assert_eq!(triples.len(), ISAS.len());
        for isa in ISAS {
            assert_eq!(isa.abi_value & !isa.abi_mask, 0, "{}", isa.triple);
            assert!(isa.interpreter.starts_with('/'), "{}", isa.triple);
        }
    }

    #[test]
    fn descriptions_name_the_float_abi() {
        assert_eq!(
            for_triple("armv7-unknown-linux-gnueabihf").unwrap().describe(),
            "ARM, ELF32, little-endian, EABI5, hard float"
        );
        assert_eq!(for_triple("s390x-unknown-linux-gnu").unwrap().describe(), "s390x, ELF64, big-endian");
        assert!(for_triple("aarch64-apple-darwin").is_none());
    }
}
