# The smoke test of an archive, as a check: the same `pgbin smoke` the host
# backend runs (extract elsewhere, empty environment, initdb, start, SQL
# checks, clean shutdown), on the build machine.
#
# - An archive the build machine runs natively (a native build, or a
#   target it can execute, such as i686 on x86_64): the sandbox has no
#   /lib64 or /lib loader, so `--interpreter` points the extracted
#   executables at the target's glibc loader in the store for this run only.
# - Any other archive runs under nixpkgs' emulator for the target
#   (`hostPlatform.emulator`, qemu-user; lib/systems/default.nix), as the
#   host backend's cross builds do, with the target's glibc as the
#   emulator's root (`--sysroot`): the executables keep the standard
#   interpreter the archive ships with, and qemu finds it in that root.
#
# Every other library must still resolve from the archive's lib/. That the
# archive names the standard loader is checked when it is made
# (nix/archive.nix).
{
  lib,
  runCommand,
  stdenv,
  buildPackages,
  patchelf,
  pgbin,
  archive,
  targetStdenv,
}:
let
  runsNatively = stdenv.hostPlatform.canExecute targetStdenv.hostPlatform;
  targetLibc = targetStdenv.cc.libc;
  how =
    if runsNatively then
      "--interpreter ${targetStdenv.cc.bintools.dynamicLinker}"
    else
      "--emulator ${targetStdenv.hostPlatform.emulator buildPackages} --sysroot ${lib.getLib targetLibc}";
in
runCommand "${archive.name}-smoke"
  {
    nativeBuildInputs = [
      pgbin
      patchelf
    ]
    # ldd, for a natively run archive
    ++ lib.optional runsNatively (targetLibc.bin or targetLibc);
    passthru = { inherit runsNatively; };
  }
  ''
    export HOME="$TMPDIR"
    pgbin smoke ${archive}/${archive.archiveName} ${how}
    touch "$out"
  ''
