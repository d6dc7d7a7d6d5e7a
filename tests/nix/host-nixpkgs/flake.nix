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
# `pgbin-binary`, and pgbin's unit test binaries as `pgbin-lib-tests` and
# `pgbin-bin-tests`, before locking this directory as the nixpkgs input.
#
# Where nixpkgs has a rule that decides whether pgbin's derivations work,
# the stand-in enforces it rather than model the happy path:
# - buildRustPackage runs the check phase by default (doCheck; the unit
#   tests, with the derivation's checkFlags), and runs it as Nix's sandbox
#   would: no network, no dpkg or apt state, no /usr/sbin (ldconfig),
#   HOME=/homeless-shelter, and on PATH only stdenv's tools
#   (pkgs/stdenv/generic/common-path.nix, with patchelf and binutils as
#   the Linux stdenv and its compiler wrapper add them) and the
#   derivation's nativeCheckInputs; a failing unit test fails pgbin, and
#   with it every archive;
# - the mkDerivation attributes nix/postgresql.nix may use are listed, and
#   any other fails evaluation.
{
  outputs =
    _:
    let
      system = "x86_64-linux";
      hostPath = "/usr/bin:/bin";

      # Bash arguments that run `script`. Nix 2.8 takes the end of the
      # builder's output for its exit and then kills it: a builder still
      # between closing its descriptors and becoming a zombie "failed due to
      # signal 9" (NixOS/nix#2176; here, half of all one-line builds). A
      # last child that holds the log open a moment longer closes the race.
      bashArgs = script: [
        "-euo"
        "pipefail"
        "-c"
        ''
          trap 'sleep 0.2 &' EXIT
          ${script}
        ''
      ];

      # A derivation that runs `script` with bash and the host's tools.
      bashDerivation =
        name: script:
        derivation {
          inherit name system;
          builder = "/bin/bash";
          PATH = hostPath;
          args = bashArgs script;
        };

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
              args = bashArgs script;
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
      hostLibraries = bashDerivation "host-libraries" ''
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
      '';

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
            make -j"${jobs}" ''${makeFlags:-} $buildFlags
            installFlagsArray=()
            eval "''${preInstall:-}"
            make ''${makeFlags:-} "''${installFlagsArray[@]}" $installTargets
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

      # A host tool as a package: its bin/ holds just that program.
      hostTool =
        program:
        bashDerivation "host-${program}" ''
          mkdir -p "$out/bin"
          ln -s "$(command -v ${program})" "$out/bin/${program}"
        '';

      # What stdenv puts on every build's PATH: common-path.nix's packages,
      # patchelf (the Linux stdenv) and binutils (the compiler wrapper), as
      # the host's Debian packages provide them (awk is Debian's mawk).
      stdenvTools = bashDerivation "stdenv-tools" ''
        mkdir -p "$out/bin"
        for package in coreutils findutils diffutils sed grep mawk tar gzip bzip2 xz-utils make bash patch file patchelf binutils; do
          dpkg-query -L "$package" | grep -E '^/(usr/)?bin/[^/]+$' | while read -r program; do
            if [ -x "$program" ] && [ ! -d "$program" ]; then ln -sfn "$program" "$out/bin/''${program##*/}"; fi
          done
        done
        ln -sfn bash "$out/bin/sh"
        ln -sfn mawk "$out/bin/awk"
      '';

      # rustPlatform.buildRustPackage: installs the pgbin binary under test
      # and, unless doCheck is false, first runs the unit test binaries with
      # checkFlags in the sandbox's environment.
      buildRustPackage =
        attrs:
        let
          doCheck = attrs.doCheck or true;
          checkFlags = builtins.concatStringsSep " " (map lib.escapeShellArg (attrs.checkFlags or [ ]));
          checkPath = builtins.concatStringsSep ":" (
            map (input: "${input}/bin") ([ stdenvTools ] ++ attrs.nativeCheckInputs or [ ])
          );
          sandboxed = ''
            for hidden in /var/lib/dpkg /etc/apt /var/cache/apt /usr/sbin; do
              mount -t tmpfs none "$hidden"
            done
            exec env -i PATH=${checkPath} HOME=/homeless-shelter TMPDIR="$TMPDIR" "$@"
          '';
        in
        bashDerivation "${attrs.pname}-${attrs.version}" ''
          ${
            if doCheck then
              ''
                # cargo runs test binaries in the package's root.
                cp -r ${attrs.src} source
                chmod -R u+w source
                cd source
                threads=''${NIX_BUILD_CORES:-1}
                [ "$threads" -gt 0 ] || threads=$(nproc)
                for tests in ${./pgbin-lib-tests} ${./pgbin-bin-tests}; do
                  unshare --map-root-user --net --mount bash -euc ${lib.escapeShellArg sandboxed} sandbox \
                    "$tests" --test-threads="$threads" ${checkFlags}
                done
              ''
            else
              ""
          }
          install -D -m 0755 ${./pgbin-binary} "$out/bin/pgbin"
        '';

      pkgs = {
        inherit
          lib
          fetchurl
          runCommand
          hostLibraries
          stdenvTools
          ;
        callPackage =
          fn: args:
          let
            f = if builtins.isFunction fn then fn else import fn;
          in
          f (builtins.mapAttrs (name: _: pkgs.${name} or "host-${name}") (builtins.functionArgs f) // args);
        stdenv = {
          inherit mkDerivation;
          hostPlatform = {
            isLinux = true;
            config = "x86_64-unknown-linux-gnu";
            # Only native builds here: the build machine runs them.
            canExecute = _: true;
          };
          cc = {
            name = "host-cc";
            cc.name = "host-gcc";
            libc.bin = "host-libc";
            bintools.dynamicLinker = "/lib64/ld-linux-x86-64.so.2";
          };
        };
        rustPlatform = {
          inherit buildRustPackage;
          bindgenHook = "host-bindgenHook";
        };
        git = hostTool "git";
        mkShell = _: throw "host-nixpkgs: mkShell is not implemented";
        buildPackages = pkgs;
      };
    in
    {
      legacyPackages.${system} = pkgs;
    };
}
