# The pgbin driver, built with nixpkgs' Rust tooling from the flake's source.
{
  lib,
  rustPlatform,
  pkg-config,
  nettle,
  src,
}:
let
  cargo = lib.importTOML ../Cargo.toml;
in
rustPlatform.buildRustPackage {
  pname = cargo.package.name;
  inherit (cargo.package) version;
  inherit src;
  cargoLock.lockFile = ../Cargo.lock;
  nativeBuildInputs = [
    pkg-config
    rustPlatform.bindgenHook
  ];
  buildInputs = [ nettle ];
  # Unit tests only: the end-to-end tests need the network-free Debian
  # toolchain and a Nix daemon, which the build sandbox does not have.
  cargoTestFlags = [
    "--lib"
    "--bins"
  ];
  meta = {
    description = cargo.package.description;
    license = lib.licenses.asl20;
    mainProgram = "pgbin";
  };
}
