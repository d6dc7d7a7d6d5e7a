# A buildable stand-in for nixpkgs in pgbin's tests, where nixpkgs cannot be
# fetched: the same attributes flake.nix and nix/*.nix use, but every
# derivation is built with the host's toolchain (/usr/bin: gcc, make, bison,
# flex, perl, patchelf; the host's -dev libraries), which needs Nix with the
# sandbox off, as Debian's nix-bin runs it. It exercises what nixpkgs does
# not decide: the flake's evaluation into real derivations, the generic
# builder's flags and install steps, the seeded source taken from the store
# without a download, pgbin packaging inside a Nix build, and `nix build
# --rebuild`. It says nothing about nixpkgs' own toolchain.
#
# The test copies the pgbin binary under test next to this file as
# `pgbin-binary` before locking this directory as the nixpkgs input.
{
  outputs =
    _:
    let
      system = "x86_64-linux";
      hostPath = "/usr/bin:/bin";

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

      # Attributes a derivation cannot take as environment variables.
      notEnvironment = [
        "passthru"
        "meta"
        "env"
        "pname"
        "version"
        "nativeBuildInputs"
        "buildInputs"
        "overrideAttrs"
      ];

      # PATH for a build: the bin/ of each native input that is a
      # derivation here, then the host's tools.
      searchPath =
        inputs:
        builtins.concatStringsSep ":" (
          map (input: "${input}/bin") (builtins.filter (input: input ? outPath) inputs) ++ [ hostPath ]
        );

      # A real derivation whose builder runs `script` with bash.
      hostDerivation =
        rebuild: attrs: script:
        let
          name = attrs.name or "${attrs.pname}-${attrs.version}";
          environment = removeAttrs attrs notEnvironment // (attrs.env or { });
          drv = derivation (
            environment
            // {
              inherit name system;
              builder = "/bin/bash";
              args = [
                "-euo"
                "pipefail"
                "-c"
                script
              ];
              PATH = searchPath (attrs.nativeBuildInputs or [ ]);
            }
          );
        in
        drv
        // (attrs.passthru or { })
        // {
          inherit name;
          overrideAttrs = f: rebuild (attrs // f attrs);
        };

      # The host's libraries laid out as nixpkgs lays out its own: copies in
      # one store path whose RUNPATHs name that store path, so that what is
      # linked against them finds them, and each other, through RUNPATH (as
      # pgbin's Nix-side packaging expects). The C library stays the host's.
      hostLibraries = derivation {
        name = "host-libraries";
        inherit system;
        builder = "/bin/bash";
        PATH = hostPath;
        args = [
          "-euo"
          "pipefail"
          "-c"
          ''
            mkdir -p "$out/lib"
            # The build machine's own multiarch directory: with another
            # architecture's -dev packages installed, /usr/lib/*-linux-gnu
            # names several.
            libdir=$(dirname "$(readlink -f "/usr/lib/$(gcc -dumpmachine)/libz.so")")
            keep() { case "$1" in libc.so.*|libm.so.*|ld-linux*|linux-vdso*) return 1;; esac; }
            for dev in libssl libcrypto libicui18n libicuuc libicudata libxml2 libxslt liblz4 libzstd libz libuuid; do
              real=$(readlink -f "$libdir/$dev.so")
              soname=$(objdump -p "$real" | awk '$1 == "SONAME" { print $2 }')
              [ -e "$out/lib/$soname" ] || cp "$real" "$out/lib/$soname"
              ln -sfn "$soname" "$out/lib/$dev.so"
              ldd "$real" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' | while read -r name path; do
                if keep "$name" && [ ! -e "$out/lib/$name" ]; then cp "$path" "$out/lib/$name"; fi
              done
            done
            chmod u+w "$out"/lib/*.so.*
            for library in "$out"/lib/*.so.*; do patchelf --set-rpath "$out/lib" "$library"; done
          ''
        ];
      };

      # The mkDerivation attributes this stand-in implements. Any other one
      # (patches, other phases or hooks) fails evaluation rather than being
      # silently ignored, so that the stand-in cannot build something other
      # than what nix/postgresql.nix asks for.
      implemented = [
        "pname"
        "version"
        "src"
        "strictDeps"
        "enableParallelBuilding"
        "nativeBuildInputs"
        "buildInputs"
        "dontAddPrefix"
        "configureFlags"
        "env"
        "makeFlags"
        "buildFlags"
        "installTargets"
        "preInstall"
        "postInstall"
        "dontPatchShebangs"
        "passthru"
        "meta"
      ];

      # stdenv.mkDerivation for autotools projects, the phases pgbin's
      # generic builder relies on: unpack, configure (with `--prefix=$out`
      # unless `dontAddPrefix`), build, install, with their flags, hooks and
      # parallelism. Linking goes through the host libraries' store copies
      # with a RUNPATH to them, as nixpkgs' linker wrapper does for its own.
      mkDerivation =
        attrs:
        let
          unknown = builtins.filter (name: !builtins.elem name implemented) (builtins.attrNames attrs);
          prefix = if attrs.dontAddPrefix or false then "" else "--prefix=$out";
          jobs = if attrs.enableParallelBuilding or false then "$NIX_BUILD_CORES" else "1";
        in
        if unknown != [ ] then
          throw "host-nixpkgs: mkDerivation does not implement ${builtins.concatStringsSep ", " unknown}"
        else
          hostDerivation mkDerivation attrs ''
            export LDFLAGS="-L${hostLibraries}/lib -Wl,-rpath,${hostLibraries}/lib ''${LDFLAGS:-}"
            export NIX_BUILD_CORES="''${NIX_BUILD_CORES:-1}"
            [ "$NIX_BUILD_CORES" -gt 0 ] || NIX_BUILD_CORES=$(nproc)
            export HOME=/homeless-shelter
            cd "$NIX_BUILD_TOP"
            tar xf "$src"
            cd "$(tar tf "$src" | head -1 | cut -d/ -f1)"
            ./configure ${prefix} $configureFlags
            make -j"${jobs}" $makeFlags $buildFlags
            installFlagsArray=()
            eval "''${preInstall:-}"
            make $makeFlags "''${installFlagsArray[@]}" $installTargets
            eval "''${postInstall:-}"
          '';

      runCommand =
        name: env: buildCommand:
        let
          build = attrs: hostDerivation build attrs buildCommand;
        in
        build (env // { inherit name; });

      # The source is never downloaded: `pgbin seed` has put it into the
      # store at exactly this fixed-output path.
      fetchurl =
        {
          name,
          urls,
          hash,
        }:
        derivation {
          inherit name system;
          builder = "/bin/sh";
          args = [
            "-c"
            "echo '${name} was not seeded into the store (run pgbin seed)' >&2; exit 1"
          ];
          outputHashMode = "flat";
          outputHash = hash;
        };

      pgbin = derivation {
        name = "pgbin-under-test";
        inherit system;
        builder = "/bin/sh";
        args = [
          "-c"
          "/usr/bin/install -D -m 0755 ${./pgbin-binary} $out/bin/pgbin"
        ];
      };

      pkgs = {
        inherit lib fetchurl runCommand hostLibraries;
        callPackage =
          fn: args:
          let
            f = if builtins.isFunction fn then fn else import fn;
          in
          f (builtins.mapAttrs (name: _: pkgs.${name} or "host-${name}") (builtins.functionArgs f) // args);
        stdenv = {
          inherit mkDerivation;
          hostPlatform.isLinux = true;
          cc = {
            name = "host-cc";
            cc.name = "host-gcc";
            libc.bin = "host-libc";
            bintools.dynamicLinker = "/lib64/ld-linux-x86-64.so.2";
          };
        };
        rustPlatform = {
          buildRustPackage = _: pgbin;
          bindgenHook = "host-bindgenHook";
        };
        mkShell = _: throw "host-nixpkgs: mkShell is not implemented";
        buildPackages = pkgs;
      };
    in
    {
      legacyPackages.${system} = pkgs;
    };
}
