# The archive derivation: runs pgbin's own relocation and packaging on the
# generic builder's install tree, exactly as the host backend does after its
# build: libraries found through the tree's /nix/store RUNPATHs are bundled
# into lib/, RUNPATHs become $ORIGIN-relative, executables get the target's
# standard ELF interpreter, store references are neutralised, and any real
# one left fails the build. The output holds the archive, its .sha256 and its
# manifest.
#
# pgbin re-verifies the source's evidence from the flake's own copy of the
# repository (offline) and checks that the tarball the tree was built from is
# the locked one.
{
  lib,
  runCommand,
  patchelf,
  pgbin,
  repo,
  postgresql,
}:
let
  inherit (postgresql) entry parameters;
in
runCommand parameters.archiveStem
  {
    nativeBuildInputs = [
      pgbin
      patchelf
    ];
    passthru = {
      inherit entry postgresql;
      archiveName = entry.archiveName;
    };
    meta.description = "${entry.archiveName} with its .sha256 and manifest, built by pgbin";
  }
  ''
    pgbin --repo ${repo} package ${postgresql} \
      --built-by nix \
      --version ${entry.version} \
      --target ${entry.target} \
      --source ${postgresql.src} \
      --compiler ${lib.escapeShellArg postgresql.compiler} \
      --out "$out"
  ''
