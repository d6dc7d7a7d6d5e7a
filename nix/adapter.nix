# The thin nixpkgs adapter: maps one generated entry to the nixpkgs package
# set that builds it and calls the generic builder there. This file and
# ./postgresql.nix are the only parts of pgbin that touch nixpkgs.
{ pkgs, entry }:
let
  packageSet = if entry.packageSet == [ ] then pkgs else pkgs.lib.getAttrFromPath entry.packageSet pkgs;
  parameters = (import ./lib.nix { }).buildParameters entry;
in
packageSet.callPackage ./postgresql.nix { inherit entry parameters; }
