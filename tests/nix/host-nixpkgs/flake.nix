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
# For a cross build it also copies an arm64 sysroot pgbin unpacked from
# Debian's signed archive (libc6-dev and the libraries' -dev packages) as
# `aarch64-sysroot`: then `pkgsCross.aarch64-multiplatform` exists.
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
#   any other fails evaluation;
# - in the cross set, mkDerivation passes --build and --host to configure
#   (configurePlatforms, pkgs/stdenv/generic/make-derivation.nix), names
#   the derivation `<pname>-<config>-<version>` (hostSuffix, same file),
#   and exports the target-prefixed compiler, binutils and pkg-config as
#   CC, AR, ..., PKG_CONFIG (the setup hooks of pkgs/build-support/
#   cc-wrapper, bintools-wrapper and pkg-config-wrapper); pkg-config sees
#   only the .pc files of the derivation's buildInputs (the pkg-config
#   wrapper's setup hook) and nothing of the build machine; the compiler
#   links every executable to the target's loader in the store and gives
#   it RUNPATHs into the store (cc-wrapper, ld-wrapper), so that nothing
#   built for the target runs without the emulator, and the emulator is
#   qemu-user itself (lib/systems/default.nix, selectEmulator), without a
#   root for the target's libraries;
# - with strictDeps, a build tool in buildInputs or a target library in
#   nativeBuildInputs fails evaluation: nixpkgs' splicing would give the
#   one the target's build (nothing runnable on PATH) and the other the
#   build machine's.
{
  outputs =
    { self }:
    let
      system = "x86_64-linux";
      buildConfig = "x86_64-unknown-linux-gnu";
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

      # The bin/ directories of those `inputs` that are derivations here.
      binDirectories = inputs: map (input: "${input}/bin") (builtins.filter (input: input ? outPath) inputs);

      # A real derivation whose builder runs `script` with bash, with the
      # bin/ of each of `tools` first on PATH, then the host's tools.
      hostDerivation =
        tools: attrs: script:
        let
          name = attrs.name or "${attrs.pname}-${attrs.version}";
          environment = removeAttrs attrs notEnvironment // (attrs.env or { });
          drv = derivation (
            environment
            // {
              inherit name system;
              builder = "/bin/bash";
              args = bashArgs script;
              PATH = builtins.concatStringsSep ":" (binDirectories tools ++ [ hostPath ]);
            }
          );
        in
        drv // (attrs.passthru or { }) // { inherit name; };

      # `list` without repeats, in order (lib.unique).
      unique = builtins.foldl' (kept: item: if builtins.elem item kept then kept else kept ++ [ item ]) [ ];

      # Marks a stand-in package as a build tool (runs on the build machine)
      # or a library (linked into what is built), for the strictDeps rule.
      asTool = drv: drv // { standInRole = "tool"; };
      asLibrary = drv: drv // { standInRole = "library"; };

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

      # What a strictDeps derivation may not have: the reason, or null.
      strictDepsViolation =
        attrs:
        let
          named = role: inputs: map (input: input.name) (builtins.filter (input: (input.standInRole or "") == role) inputs);
          toolsAsHostInputs = named "tool" (attrs.buildInputs or [ ]);
          librariesAsBuildInputs = named "library" (attrs.nativeBuildInputs or [ ]);
        in
        if !(attrs.strictDeps or false) then
          null
        else if toolsAsHostInputs != [ ] then
          "build tools in buildInputs (${builtins.concatStringsSep ", " toolsAsHostInputs}): with strictDeps they are built for the host platform and none of them is on PATH; use nativeBuildInputs"
        else if librariesAsBuildInputs != [ ] then
          "libraries in nativeBuildInputs (${builtins.concatStringsSep ", " librariesAsBuildInputs}): with strictDeps those are the build machine's, not linked into the host's code; use buildInputs"
        else
          null;

      # stdenv.mkDerivation for autotools projects, the phases pgbin's
      # generic builder relies on: unpack, configure (with `--prefix=$out`
      # unless `dontAddPrefix`), build, install, with their flags, hooks and
      # parallelism, for the package set of `platform`.
      mkDerivationFor =
        platform:
        let
          mkDerivation =
            attrs:
            let
              unknown = builtins.filter (name: !builtins.elem name implemented) (builtins.attrNames attrs);
              violation = strictDepsViolation attrs;
              prefix = if attrs.dontAddPrefix or false then "" else "--prefix=$out";
              jobs = if attrs.enableParallelBuilding or false then "$NIX_BUILD_CORES" else "1";
              named = attrs // {
                name = attrs.name or "${attrs.pname}${platform.hostSuffix}-${attrs.version}";
                configureFlags = (attrs.configureFlags or [ ]) ++ platform.configurePlatformFlags;
              };
            in
            if unknown != [ ] then
              throw "host-nixpkgs: mkDerivation does not implement ${builtins.concatStringsSep ", " unknown}"
            else if violation != null then
              throw "host-nixpkgs: ${named.name}: ${violation}"
            else
              hostDerivation ((attrs.nativeBuildInputs or [ ]) ++ platform.tools) named ''
                ${platform.environment (attrs.buildInputs or [ ])}
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
              ''
              # Overrides apply to what the caller gave, before the name and
              # the platform's configure flags are added.
              // {
                overrideAttrs = f: mkDerivation (attrs // f attrs);
              };
        in
        mkDerivation;

      # The native set's platform: the host's gcc, and linking through the
      # host libraries' store copies with a RUNPATH to them, as nixpkgs'
      # linker wrapper does for its own.
      nativePlatform = {
        hostSuffix = "";
        configurePlatformFlags = [ ];
        tools = [ ];
        environment = _: ''
          export LDFLAGS="-L${hostLibraries}/lib -Wl,-rpath,${hostLibraries}/lib ''${LDFLAGS:-}"
        '';
        hostPlatform = {
          isLinux = true;
          config = buildConfig;
          canExecute = platform: platform.config == buildConfig;
          # lib/systems/default.nix: where the build machine runs the code,
          # an exec wrapper.
          emulator = _: "${execWrapper}/bin/exec";
        };
      };

      execWrapper = bashDerivation "exec" ''
        mkdir -p "$out/bin"
        printf '#!/bin/sh\nexec "$@"\n' > "$out/bin/exec"
        chmod +x "$out/bin/exec"
      '';

      # The target of pkgsCross.aarch64-multiplatform (lib/systems/examples.nix)
      # and the Debian names of its toolchain.
      aarch64 = {
        config = "aarch64-unknown-linux-gnu";
        debianTriplet = "aarch64-linux-gnu";
        qemuArch = "aarch64";
        loader = "lib/ld-linux-aarch64.so.1";
        # Debian bookworm's gcc-aarch64-linux-gnu.
        gccVersion = "12.2.0";
      };

      sysrootSource = "${self}/aarch64-sysroot";
      hasSysroot = builtins.pathExists sysrootSource;

      # The target's C library and libraries as one store path, laid out as
      # the Debian sysroot has them, with RUNPATHs into that store path and
      # .pc files that name it, as nixpkgs' own packages do.
      crossLibraries = asLibrary (
        bashDerivation "host-libraries-${aarch64.config}" ''
          cp -a ${sysrootSource}/. "$out"
          chmod -R u+w "$out"
          t=${aarch64.debianTriplet}
          for library in "$out"/usr/lib/$t/*.so* "$out"/lib/$t/*.so*; do
            [ -f "$library" ] && [ ! -L "$library" ] || continue
            case "''${library##*/}" in ld-linux-*|libc.so.*) continue ;; esac
            [ "$(head -c 4 "$library" | tail -c 3)" = ELF ] || continue
            patchelf --set-rpath "$out/usr/lib/$t:$out/lib/$t" "$library"
          done
          for pc in "$out"/usr/lib/$t/pkgconfig/*.pc "$out"/usr/share/pkgconfig/*.pc; do
            [ -f "$pc" ] || continue
            sed -i -E -e "s#^(prefix|exec_prefix|libdir|includedir)[[:space:]]*=[[:space:]]*/usr#\1=$out/usr#" \
              -e "s#(-I|-L)/usr/#\1$out/usr/#g" "$pc"
            if grep -En '^(prefix|exec_prefix|libdir|includedir)[[:space:]]*=[[:space:]]*/usr|(-I|-L)/usr/' "$pc"; then
              echo "$pc still names the build machine's /usr" >&2
              exit 1
            fi
          done
          ln -s ../usr/lib/$t/pkgconfig "$out/lib/pkgconfig"
          mkdir -p "$out/share"
          [ ! -d "$out/usr/share/pkgconfig" ] || ln -s ../usr/share/pkgconfig "$out/share/pkgconfig"
        ''
      );

      # The cross compiler and binutils, prefixed with the target's config
      # as nixpkgs' wrappers are: Debian's cross gcc with the target's
      # libraries as its root; every link that is not static gets the
      # store's loader as `-dynamic-linker` and RUNPATHs into the store, as
      # ld-wrapper.sh does for link type "dynamic" (utils.bash's
      # checkLinkType: anything without -static or -static-pie, -shared
      # included). GNU ld records an interpreter for executables only (a
      # -shared link with -dynamic-linker has no PT_INTERP, binutils 2.40).
      crossCompiler = bashDerivation "${aarch64.config}-gcc-wrapper" ''
        mkdir -p "$out/bin"
        cat > wrapper <<'WRAPPER'
        #!/bin/bash
        # Outside the store, the build directory and /tmp, a path is the
        # build machine's: -I and -L to one are skipped, as cc-wrapper does
        # under NIX_ENFORCE_PURITY (wrapper-common/utils.bash, badPath).
        impure() {
          case $1 in
            /nix/store/* | "$NIX_BUILD_TOP"/* | /tmp/*) return 1 ;;
            /*) return 0 ;;
            *) return 1 ;;
          esac
        }
        link=1 dynamic=1 pending=
        for arg; do
          shift
          if [ -n "$pending" ]; then
            impure "$arg" || set -- "$@" "$pending" "$arg"
            pending=
            continue
          fi
          case $arg in
            -c | -S | -E | -M | -MM) link=0 ;;
            -static | -static-pie) dynamic=0 ;;
            -I | -L) pending=$arg && continue ;;
            -I/* | -L/*) impure "''${arg:2}" && continue ;;
          esac
          set -- "$@" "$arg"
        done
        flags=(--sysroot=@libraries@)
        if [ $link = 1 ]; then
          flags+=(-Wl,-rpath,@libraries@/usr/lib/@triplet@ -Wl,-rpath,@libraries@/lib/@triplet@)
          [ $dynamic = 0 ] || flags+=(-Wl,--dynamic-linker=@libraries@/@loader@)
        fi
        exec /usr/bin/@triplet@-@compiler@ "''${flags[@]}" "$@"
        WRAPPER
        for compiler in cc:gcc c++:g++; do
          wrapped="$out/bin/${aarch64.config}-''${compiler%%:*}"
          sed -e 's|@libraries@|${crossLibraries}|g' -e 's|@triplet@|${aarch64.debianTriplet}|g' \
            -e 's|@loader@|${aarch64.loader}|g' -e "s|@compiler@|''${compiler#*:}|" wrapper > "$wrapped"
          chmod +x "$wrapped"
        done
        ln -s ${aarch64.config}-cc "$out/bin/${aarch64.config}-gcc"
        for tool in ar as ld nm objcopy objdump readelf ranlib strip strings size; do
          ln -s /usr/bin/${aarch64.debianTriplet}-$tool "$out/bin/${aarch64.config}-$tool"
        done
      '';

      # pkg-config for the target, as spliced into nativeBuildInputs: only
      # the .pc directories of the build's host inputs (PKG_CONFIG_PATH,
      # from the wrapper's setup hook), never the build machine's own.
      crossPkgConfig = asTool (
        bashDerivation "${aarch64.config}-pkg-config-wrapper" ''
          mkdir -p "$out/bin"
          printf '%s\n' '#!/bin/sh' 'export PKG_CONFIG_LIBDIR="''${PKG_CONFIG_PATH:-}"' 'unset PKG_CONFIG_PATH' \
            'exec /usr/bin/pkg-config "$@"' > "$out/bin/${aarch64.config}-pkg-config"
          chmod +x "$out/bin/${aarch64.config}-pkg-config"
        ''
      );

      crossPlatform = {
        hostSuffix = "-${aarch64.config}";
        configurePlatformFlags = [
          "--build=${buildConfig}"
          "--host=${aarch64.config}"
        ];
        tools = [ crossCompiler ];
        environment = buildInputs: ''
          export CC=${aarch64.config}-cc CXX=${aarch64.config}-c++ PKG_CONFIG=${aarch64.config}-pkg-config
          for tool in ar as ld nm objcopy objdump readelf ranlib strip strings size; do
            export "$(echo $tool | tr a-z A-Z)=${aarch64.config}-$tool"
          done
          export PKG_CONFIG_PATH=${
            builtins.concatStringsSep ":" (
              builtins.concatMap (input: [
                "${input}/lib/pkgconfig"
                "${input}/share/pkgconfig"
              ]) (unique (builtins.filter (input: input ? outPath) buildInputs))
            )
          }
        '';
        hostPlatform = {
          isLinux = true;
          inherit (aarch64) config qemuArch;
          canExecute = platform: platform.config == aarch64.config;
          emulator = pkgs: "${pkgs.qemu-user}/bin/qemu-${aarch64.qemuArch}";
        };
      };

      runCommand =
        name: env: buildCommand:
        let
          build =
            attrs:
            hostDerivation (attrs.nativeBuildInputs or [ ]) attrs buildCommand
            // {
              overrideAttrs = f: build (attrs // f attrs);
            };
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
        asTool (
          bashDerivation "host-${program}" ''
            mkdir -p "$out/bin"
            ln -s "$(command -v ${program})" "$out/bin/${program}"
          ''
        );

      # qemu-user: Debian's qemu-user package's emulators.
      qemu-user = asTool (
        bashDerivation "host-qemu-user" ''
          mkdir -p "$out/bin"
          for emulator in /usr/bin/qemu-*; do ln -s "$emulator" "$out/bin/''${emulator##*/}"; done
        ''
      );

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

      # callPackage over `set`: each argument the function names, from the
      # set, else a placeholder string (an input this stand-in does not
      # build, which the host's /usr/bin provides).
      callPackageWith =
        set: fn: args:
        let
          f = if builtins.isFunction fn then fn else import fn;
        in
        f (builtins.mapAttrs (name: _: set.${name} or "host-${name}") (builtins.functionArgs f) // args);

      pkgs = {
        inherit
          lib
          fetchurl
          runCommand
          hostLibraries
          stdenvTools
          qemu-user
          ;
        callPackage = callPackageWith pkgs;
        stdenv = {
          mkDerivation = mkDerivationFor nativePlatform;
          inherit (nativePlatform) hostPlatform;
          buildPlatform = nativePlatform.hostPlatform;
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
        pkgsCross.aarch64-multiplatform =
          if hasSysroot then
            aarch64Pkgs
          else
            throw "host-nixpkgs: pkgsCross.aarch64-multiplatform needs an arm64 sysroot copied beside this file as aarch64-sysroot";
      };

      # pkgsCross.aarch64-multiplatform: built on x86_64 for aarch64, with
      # the build machine's tools spliced into nativeBuildInputs and the
      # target's libraries into buildInputs.
      aarch64Pkgs = {
        inherit lib fetchurl runCommand;
        callPackage = callPackageWith aarch64Pkgs;
        stdenv = {
          mkDerivation = mkDerivationFor crossPlatform;
          inherit (crossPlatform) hostPlatform;
          buildPlatform = nativePlatform.hostPlatform;
          cc = {
            inherit (crossCompiler) outPath;
            name = "${aarch64.config}-gcc-wrapper";
            cc.name = "${aarch64.config}-gcc-${aarch64.gccVersion}";
            libc = crossLibraries;
            bintools.dynamicLinker = "${crossLibraries}/${aarch64.loader}";
          };
        };
        buildPackages = pkgs;
        pkg-config = crossPkgConfig;
        bison = hostTool "bison";
        flex = hostTool "flex";
        perl = hostTool "perl";
        zlib = crossLibraries;
        icu = crossLibraries;
        openssl = crossLibraries;
        libxml2 = crossLibraries;
        libxslt = crossLibraries;
        lz4 = crossLibraries;
        zstd = crossLibraries;
        libuuid = crossLibraries;
      };
    in
    {
      legacyPackages.${system} = pkgs;
    };
}
