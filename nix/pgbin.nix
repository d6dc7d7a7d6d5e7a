# The pgbin driver, built with nixpkgs' Rust tooling from the flake's source.
{
  lib,
  rustPlatform,
  pkg-config,
  nettle,
  git,
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
  # buildRustPackage runs `cargo test` in its check phase by default
  # (pkgs/build-support/rust/build-rust-package/default.nix: doCheck;
  # hooks/cargo-check-hook.sh passes cargoTestFlags to cargo and checkFlags
  # to the test binaries). Unit tests only: the end-to-end tests need the
  # Debian toolchain and a Nix daemon, which the build sandbox does not have.
  cargoTestFlags = [
    "--lib"
    "--bins"
  ];
  # One unit test makes a git repository.
  nativeCheckInputs = [ git ];
  # The sandbox has no dpkg, no ldconfig (nixpkgs' glibc does not read the
  # system's ld.so cache either) and no qemu-user: these three tests read
  # facts of a Debian build machine, and run in pgbin's own CI.
  checkFlags = [
    "--skip=build::apt::tests::dpkg_knows_the_c_library"
    "--skip=build::relocate::tests::the_system_index_knows_libc"
    "--skip=build::smoke::tests::wrapped_executables_run_emulated_with_the_wrapper_as_argv0_and_their_origin_beside_bin"
  ];
  meta = {
    description = cargo.package.description;
    license = lib.licenses.asl20;
    mainProgram = "pgbin";
  };
}
