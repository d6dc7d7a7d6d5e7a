# The generic PostgreSQL builder: one derivation for every (version, target),
# parameterised only by one entry of the generated data (in the manner of
# nixpkgs' generic builders). It is pgbin's own derivation, not an override
# of nixpkgs' postgresql, whose patches change run-time behaviour (socket
# directory, removed pg_config) that consumers of the archives rely on.
#
# Features, configure flags, the source and its verified hash all come from
# `entry`; this file only maps feature names to nixpkgs inputs.
{
  lib,
  stdenv,
  fetchurl,
  buildPackages,
  pkg-config,
  bison,
  flex,
  perl,
  zlib,
  icu,
  openssl,
  libxml2,
  libxslt,
  lz4,
  zstd,
  libuuid,
  entry,
  parameters,
}:
let
  enabled = name: entry.features.${name}.enabled;
  # The same install prefix as the host backend. The prefix is compiled into
  # the binaries (pg_config, and the relative-path logic), so it must not be
  # a store path: the tree is installed under DESTDIR and then moved to $out.
  installPrefix = "/opt/${parameters.archiveStem}";
in
stdenv.mkDerivation {
  pname = "postgresql";
  inherit (entry) version;

  # The hash is the one pgbin verified; `pgbin seed` puts the tarball into the
  # store under exactly this name, so no download happens.
  src = fetchurl {
    inherit (entry.source) name urls hash;
  };

  strictDeps = true;
  enableParallelBuilding = true;

  nativeBuildInputs = [
    pkg-config
    bison
    flex
    perl
  ];

  buildInputs =
    [ zlib ]
    ++ lib.optional (enabled "icu") icu
    ++ lib.optional (enabled "openssl") openssl
    ++ lib.optional (enabled "libxml") libxml2
    ++ lib.optional (enabled "libxslt") libxslt
    ++ lib.optional (enabled "lz4") lz4
    ++ lib.optional (enabled "zstd") zstd
    ++ lib.optional (enabled "uuid" && stdenv.hostPlatform.isLinux) libuuid;

  # The archive layout is bin/ lib/ share/ include/ under one prefix.
  dontAddPrefix = true;
  configureFlags = [ "--prefix=${installPrefix}" ] ++ entry.configureFlags;

  env =
    {
      SOURCE_DATE_EPOCH = toString entry.sourceDateEpoch;
    }
    // lib.optionalAttrs parameters.crossExportDynamic {
      LDFLAGS_EX_BE = "-Wl,--export-dynamic";
    }
    # A cross build is configured with --build and --host (nixpkgs'
    # configurePlatforms, pkgs/stdenv/generic/make-derivation.nix), so
    # configure refuses to go on without ZIC in its environment
    # (configure.ac: "When cross-compiling, ... set the environment variable
    # ZIC"). The target's own zic, built in src/timezone, is run under
    # nixpkgs' emulator for the target (lib/systems/default.nix: qemu-user,
    # or an exec wrapper where the build machine runs the target's code), so
    # share/timezone is what a native build installs, as in the host backend.
    // lib.optionalAttrs parameters.emulatedZic {
      ZIC = "${stdenv.hostPlatform.emulator buildPackages} ./zic";
    };

  buildFlags = [ "world-bin" ];
  installTargets = [ "install-world-bin" ];
  preInstall = ''
    installFlagsArray+=("DESTDIR=$NIX_BUILD_TOP/stage")
  '';
  postInstall = ''
    mkdir -p "$out"
    cp -a "$NIX_BUILD_TOP/stage${installPrefix}/." "$out/"
  ''
  # PGXS's Makefile.global records configure's ZIC, the emulator's store
  # path: extensions never run zic, so it is emptied, as the host backend does.
  + lib.optionalString parameters.emulatedZic ''
    sed -i 's|^ZIC = .*$|ZIC = |' "$out/lib/pgxs/src/Makefile.global"
  '';

  # Archives must not refer to /nix/store; relocation and packaging are done
  # by the archive derivation, which checks for leftover store paths.
  dontPatchShebangs = true;

  passthru = {
    inherit entry parameters installPrefix;
    # Recorded in the archive's manifest as the toolchain's compiler.
    compiler = stdenv.cc.cc.name or stdenv.cc.name;
  };

  meta = {
    description = "PostgreSQL ${entry.version} for ${entry.target}, built by pgbin";
    homepage = "https://www.postgresql.org/";
    license = lib.licenses.postgresql;
    platforms = lib.platforms.unix;
  };
}
