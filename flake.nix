{
  description = "pgbin: hermetic, verifiable PostgreSQL binaries";

  # The only input. Its revision and narHash are pinned in flake.lock; every
  # toolchain and library comes from it.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs =
    { self, nixpkgs }:
    let
      # Pure layer: generated data to attribute names and parameters (no nixpkgs).
      pgbinData = import ./nix/lib.nix { };
      inherit (pgbinData) genAttrs systems;
      forAllSystems = genAttrs systems;

      pkgsFor = system: nixpkgs.legacyPackages.${system};

      pgbinFor = system: (pkgsFor system).callPackage ./nix/pgbin.nix { src = self; };

      postgresqlFor =
        system:
        builtins.mapAttrs (
          _: entry:
          import ./nix/adapter.nix {
            pkgs = pkgsFor system;
            pgbin = pgbinFor system;
            repo = self;
            inherit entry;
          }
        ) (pgbinData.entriesFor system);

      # One smoke-test check per newest release of each major and target
      # that can run where it is built, chosen from the generated data
      # alone, so that listing the checks evaluates no package set.
      smokeChecksFor =
        system:
        builtins.listToAttrs (
          builtins.concatMap (
            entry:
            if (pgbinData.buildParameters entry).smokeTestable then
              [
                {
                  name = "${entry.attr}-smoke";
                  value = self.packages.${system}.${entry.attr}.tests.smoke;
                }
              ]
            else
              [ ]
          ) (pgbinData.newestEntriesFor system)
        );

      isLinux = system: builtins.match ".*-linux" system != null;
    in
    {
      lib = pgbinData;

      # Every verified release x target, plus `postgresql-MAJOR-SUFFIX` (the
      # newest verified release of that major) and `postgresql-SUFFIX` (the
      # newest of all), which are the same derivations.
      packages = forAllSystems (
        system:
        let
          releases = postgresqlFor system;
        in
        releases
        // builtins.mapAttrs (_: attr: releases.${attr}) (pgbinData.aliasesFor system)
        // {
          pgbin = pgbinFor system;
          default = pgbinFor system;
        }
      );

      apps = forAllSystems (
        system:
        let
          app = {
            type = "app";
            program = "${pgbinFor system}/bin/pgbin";
            meta.description = "pgbin, the driver: catalog, source verification, Nix data";
          };
        in
        {
          pgbin = app;
          default = app;
        }
      );

      devShells = forAllSystems (system: {
        default = (pkgsFor system).mkShell {
          inputsFrom = [ (pgbinFor system) ];
          packages = with (pkgsFor system); [
            cargo
            rustc
            clippy
            rustfmt
            nixfmt
          ];
        };
      });

      # `nix fmt` runs the formatter without arguments (Nix >= 2.25), where
      # nixfmt would read standard input; nixfmt-tree formats every .nix file
      # of the tree (nixpkgs: pkgs/by-name/ni/nixfmt-tree/package.nix).
      formatter = forAllSystems (system: (pkgsFor system).nixfmt-tree);

      checks = forAllSystems (
        system:
        let
          pkgs = pkgsFor system;
        in
        {
          pgbin = pgbinFor system;
          # The committed Nix data must be exactly what the driver generates
          # from the committed catalog, lock and evidence.
          generated-data = pkgs.runCommand "pgbin-generated-data-check" { } ''
            cp -r ${self} repo
            chmod -R u+w repo
            ${pgbinFor system}/bin/pgbin --repo repo generate --check
            touch $out
          '';
        }
        // smokeChecksFor system
      );

      # Hydra builds the newest release of each major per target; older
      # releases stay buildable on demand.
      hydraJobs =
        let
          newestFor =
            system: f:
            builtins.listToAttrs (
              map (entry: {
                name = entry.attr;
                value = f self.packages.${system}.${entry.attr};
              }) (pgbinData.newestEntriesFor system)
            );
        in
        {
          packages = genAttrs (builtins.filter isLinux systems) (
            system: newestFor system (p: p) // { pgbin = self.packages.${system}.pgbin; }
          );
          archives = genAttrs (builtins.filter isLinux systems) (system: newestFor system (p: p.archive));
        };
    };
}
