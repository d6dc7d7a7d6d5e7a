# The thin nixpkgs adapter: maps one generated entry to the nixpkgs package
# set that builds it and calls the generic builder there; the archive and
# its smoke test run on the build machine (`pkgs`). This file and the
# derivations it calls are the only parts of pgbin that touch nixpkgs.
{
  pkgs,
  entry,
  pgbin,
  repo,
}:
let
  packageSet = if entry.packageSet == [ ] then pkgs else pkgs.lib.getAttrFromPath entry.packageSet pkgs;
  parameters = (import ./lib.nix { }).buildParameters entry;
  postgresql = packageSet.callPackage ./postgresql.nix { inherit entry parameters; };
  archive = pkgs.callPackage ./archive.nix { inherit pgbin repo postgresql; };
  smoke = pkgs.callPackage ./smoke.nix {
    inherit pgbin archive;
    targetStdenv = packageSet.stdenv;
  };
in
# `nix build .#<attr>` gives the install tree; `.#<attr>.archive` the
# archive, .sha256 and manifest; `.#<attr>.tests.smoke` its smoke test.
postgresql.overrideAttrs (old: {
  passthru = old.passthru // {
    inherit archive;
    tests = pkgs.lib.optionalAttrs parameters.smokeTestable { inherit smoke; };
  };
})
