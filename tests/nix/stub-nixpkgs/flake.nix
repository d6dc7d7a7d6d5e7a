# A recording stand-in for nixpkgs in pgbin's tests, where nixpkgs cannot be
# fetched. Package sets here build nothing: `mkDerivation` and `runCommand`
# return their arguments (with passthru merged in, as nixpkgs does), every
# package input is the string "stub-<name>", and the compiler and loader are
# fixed strings. The tests evaluate the real flake.nix and nix/*.nix against
# it and read back what would be built: configure flags, the archive
# derivation's pgbin command line, which smoke checks exist.
{
  outputs =
    _:
    let
      lib = {
        optional = cond: value: if cond then [ value ] else [ ];
        optionalAttrs = cond: attrs: if cond then attrs else { };
        getBin = drv: drv;
        getAttrFromPath = path: set: builtins.foldl' (s: name: s.${name}) set path;
        escapeShellArg = text: "'${builtins.replaceStrings [ "'" ] [ "'\\''" ] text}'";
        importTOML = path: builtins.fromTOML (builtins.readFile path);
        licenses = {
          postgresql = "PostgreSQL";
          asl20 = "Apache-2.0";
        };
        platforms.unix = [ ];
      };

      mkDerivation =
        attrs:
        let
          name = attrs.name or "${attrs.pname}-${attrs.version}";
        in
        attrs
        // (attrs.passthru or { })
        // {
          inherit name;
          outPath = "/nix/store/00000000000000000000000000000000-${name}";
          overrideAttrs = f: mkDerivation (attrs // f attrs);
        };

      packageSet =
        system:
        let
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
              hostPlatform.isLinux = builtins.match ".*-linux" system != null;
              cc = {
                name = "stub-cc-wrapper";
                cc.name = "gcc-stub";
                libc.bin = "stub-libc-bin";
                bintools.dynamicLinker = "/stub/lib/ld.so";
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
            buildPackages = pkgs;
            pkgsCross = {
              gnu64 = pkgs;
              aarch64-multiplatform = pkgs;
              musl64 = pkgs;
              aarch64-multiplatform-musl = pkgs;
              armv7l-hf-multiplatform = pkgs;
              sheevaplug = pkgs;
              gnu32 = pkgs;
              powernv = pkgs;
              s390x = pkgs;
              mips64el-linux-gnuabi64 = pkgs;
              musl32 = pkgs;
              musl-power = pkgs;
            };
          };
        in
        pkgs;
    in
    {
      legacyPackages = builtins.listToAttrs (
        map
          (system: {
            name = system;
            value = packageSet system;
          })
          [
            "x86_64-linux"
            "aarch64-linux"
            "x86_64-darwin"
            "aarch64-darwin"
          ]
      );
    };
}
