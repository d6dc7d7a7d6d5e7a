# The smoke test of an archive, as a check: the same `pgbin smoke` the host
# backend runs (extract elsewhere, empty environment, initdb, start, SQL
# checks, clean shutdown). The build sandbox has no /lib64 loader, so the
# extracted executables are pointed at the sandbox's own glibc loader for
# this run only; every other library must still resolve from the archive's
# lib/. That the archive names the standard loader is checked when it is
# made (nix/archive.nix).
{
  runCommand,
  stdenv,
  patchelf,
  pgbin,
  archive,
}:
runCommand "${archive.name}-smoke"
  {
    nativeBuildInputs = [
      pgbin
      patchelf
      # ldd
      (stdenv.cc.libc.bin or stdenv.cc.libc)
    ];
  }
  ''
    export HOME="$TMPDIR"
    pgbin smoke ${archive}/${archive.archiveName} --interpreter ${stdenv.cc.bintools.dynamicLinker}
    touch "$out"
  ''
