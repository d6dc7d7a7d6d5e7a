# A recording stand-in for nixpkgs in pgbin's tests, where nixpkgs cannot be
# fetched. Package sets here build nothing: `mkDerivation` and `runCommand`
# return their arguments (with passthru merged in, as nixpkgs does), every
# package input is the string "stub-<name>", and the compiler and loader are
# fixed strings. The tests evaluate the real flake.nix and nix/*.nix against
# it and read back what would be built: configure flags, the archive
# derivation's pgbin command line, which smoke checks exist.
#
# It records, and where it can enforces, the nixpkgs rules that decide
# whether pgbin's derivations can work, each from the nixpkgs file it
# mirrors:
# - a `pkgsCross.*` set builds for another platform: mkDerivation passes
#   `--build` and `--host` to configure (configurePlatforms,
#   pkgs/stdenv/generic/make-derivation.nix), which makes PostgreSQL's
#   configure cross-compile, and that refuses to run without `ZIC` in its
#   environment or --with-system-tzdata (PostgreSQL's configure.ac); the
#   stand-in refuses such a PostgreSQL derivation at evaluation;
# - names of packages built for another platform carry the host's config,
#   `<pname>-<config>-<version>` (make-derivation.nix, hostSuffix);
# - `hostPlatform.emulator` gives the program that runs host code on the
#   build machine, and `canExecute` whether a platform runs another's code
#   (lib/systems/default.nix);
# - `nix fmt` (Nix >= 2.25) runs the formatter without arguments, and then
#   nixfmt reads standard input while nixfmt-tree formats the tree
#   (pkgs/by-name/ni/nixfmt-tree/package.nix).
{
  outputs =
    _:
    let
      lib = {
        optional = cond: value: if cond then [ value ] else [ ];
        optionalAttrs = cond: attrs: if cond then attrs else { };
        optionalString = cond: text: if cond then text else "";
        getBin = drv: drv;
        getLib = drv: drv;
        getAttrFromPath = path: set: builtins.foldl' (s: name: s.${name}) set path;
        escapeShellArg = text: "'${builtins.replaceStrings [ "'" ] [ "'\\''" ] text}'";
        importTOML = path: builtins.fromTOML (builtins.readFile path);
        licenses = {
          postgresql = "PostgreSQL";
          asl20 = "Apache-2.0";
        };
        platforms.unix = [ ];
      };

      # The platform config of each system's own (native) package set.
      nativeConfigs = {
        x86_64-linux = "x86_64-unknown-linux-gnu";
        aarch64-linux = "aarch64-unknown-linux-gnu";
        x86_64-darwin = "x86_64-apple-darwin";
        aarch64-darwin = "aarch64-apple-darwin";
      };

      # lib.systems.examples: the host config of each pkgsCross set pgbin uses.
      crossConfigs = {
        gnu64 = "x86_64-unknown-linux-gnu";
        aarch64-multiplatform = "aarch64-unknown-linux-gnu";
        musl64 = "x86_64-unknown-linux-musl";
        aarch64-multiplatform-musl = "aarch64-unknown-linux-musl";
        armv7l-hf-multiplatform = "armv7l-unknown-linux-gnueabihf";
        sheevaplug = "armv5tel-unknown-linux-gnueabi";
        gnu32 = "i686-unknown-linux-gnu";
        powernv = "powerpc64le-unknown-linux-gnu";
        s390x = "s390x-unknown-linux-gnu";
        mips64el-linux-gnuabi64 = "mips64el-unknown-linux-gnuabi64";
        musl32 = "i686-unknown-linux-musl";
        musl-power = "powerpc64le-unknown-linux-musl";
      };

      # qemu's name for a CPU, where it is not the config's (lib/systems/default.nix, qemuArch).
      qemuArch = {
        armv7l = "arm";
        armv5tel = "arm";
        i686 = "i386";
        powerpc64le = "ppc64le";
      };

      # What `nix fmt` does with a formatter's main program run without
      # arguments.
      formatters = {
        nixfmt = {
          mainProgram = "nixfmt";
          withoutArguments = "reads Nix from standard input";
        };
        nixfmt-tree = {
          mainProgram = "treefmt";
          withoutArguments = "formats every .nix file of the tree";
        };
      };

      cpu = config: builtins.head (builtins.split "-" config);
      # Whether a machine of config `machine` runs code built for `code`.
      runs = machine: code: cpu machine == cpu code || (cpu code == "i686" && cpu machine == "x86_64");

      packageSet =
        system: hostConfig:
        let
          buildConfig = nativeConfigs.${system};
          cross = hostConfig != buildConfig;
          hostSuffix = lib.optionalString cross "-${hostConfig}";

          # PostgreSQL's configure under --build/--host != --build: it needs
          # ZIC in the environment, or system time zone data.
          configureRefusal =
            attrs:
            if
              cross
              && (attrs.pname or "") == "postgresql"
              && !((attrs.env or { }) ? ZIC)
              && !(builtins.elem "--with-system-tzdata" (attrs.configureFlags or [ ]))
            then
              "stub-nixpkgs: PostgreSQL's configure, run with --build=${buildConfig} --host=${hostConfig}, stops: When cross-compiling, either use the option --with-system-tzdata to use existing time-zone data, or set the environment variable ZIC"
            else
              null;

          mkDerivation =
            attrs:
            let
              name = if attrs ? name then attrs.name + hostSuffix else "${attrs.pname}${hostSuffix}-${attrs.version}";
              refusal = configureRefusal attrs;
            in
            if refusal != null then
              throw refusal
            else
              attrs
              // (attrs.passthru or { })
              // {
                inherit name;
                configurePlatformFlags = lib.optional cross "--build=${buildConfig}" ++ lib.optional cross "--host=${hostConfig}";
                outPath = "/nix/store/00000000000000000000000000000000-${name}";
                overrideAttrs = f: mkDerivation (attrs // f attrs);
              };

          pkgs = {
            inherit lib;
            callPackage =
              fn: args:
              let
                f = if builtins.isFunction fn then fn else import fn;
              in
              f (builtins.mapAttrs (name: _: pkgs.${name} or "stub-${name}") (builtins.functionArgs f) // args);
            stdenv = {
              inherit mkDerivation;
              hostPlatform = {
                config = hostConfig;
                isLinux = builtins.match ".*-linux-.*" hostConfig != null;
                # Whether this platform runs another's code (lib/systems:
                # compatible CPUs, the same kernel).
                canExecute = platform: runs hostConfig platform.config;
                # An exec wrapper where the build machine runs host code
                # (canExecute), else qemu-user for the host's CPU.
                emulator =
                  buildPackages:
                  if runs buildConfig hostConfig then
                    "/nix/store/33333333333333333333333333333333-exec/bin/exec"
                  else
                    "/nix/store/22222222222222222222222222222222-qemu-user/bin/qemu-${qemuArch.${cpu hostConfig} or (cpu hostConfig)}";
              };
              cc = {
                name = "stub-cc-wrapper";
                cc.name = "gcc-stub";
                libc = {
                  outPath = "/nix/store/44444444444444444444444444444444-glibc${hostSuffix}";
                  bin = "stub-libc-bin";
                };
                bintools.dynamicLinker = if cross then "/stub/${hostConfig}/lib/ld.so" else "/stub/lib/ld.so";
              };
            };
            runCommand = name: env: buildCommand: mkDerivation (env // { inherit name buildCommand; });
            fetchurl =
              {
                name,
                urls,
                hash,
              }:
              {
                inherit name urls hash;
                outPath = "/nix/store/11111111111111111111111111111111-${name}";
              };
            rustPlatform = {
              buildRustPackage = mkDerivation;
              bindgenHook = "stub-bindgenHook";
            };
            mkShell = mkDerivation;
            buildPackages = packageSet system buildConfig;
            pkgsCross = builtins.mapAttrs (_: config: packageSet system config) crossConfigs;
          }
          // builtins.mapAttrs (
            pname: formatter:
            mkDerivation {
              inherit pname;
              version = "stub";
              meta.mainProgram = formatter.mainProgram;
              passthru = { inherit (formatter) withoutArguments; };
            }
          ) formatters;
        in
        pkgs;
    in
    {
      legacyPackages = builtins.mapAttrs (system: config: packageSet system config) nativeConfigs;
    };
}
