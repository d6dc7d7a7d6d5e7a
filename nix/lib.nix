# The pure layer of the flake: reads the generated data and computes flake
# attribute names and build parameters with builtins only (no nixpkgs), so it
# evaluates anywhere, including in pgbin's own tests with a plain `nix`.
#
# Every entry in ./generated was emitted by `pgbin generate` after the source
# it names was verified; nothing here fetches or trusts anything else.
{
  generated ? ./generated,
}:
let
  inherit (builtins)
    attrNames
    concatMap
    filter
    fromJSON
    listToAttrs
    map
    match
    readDir
    readFile
    replaceStrings
    ;

  # Like nixpkgs' lib.genAttrs, with builtins only.
  genAttrs =
    names: f:
    listToAttrs (
      map (name: {
        inherit name;
        value = f name;
      }) names
    );

  removeSuffix =
    suffix: text:
    let
      keep = builtins.stringLength text - builtins.stringLength suffix;
    in
    if keep >= 0 && builtins.substring keep (-1) text == suffix then builtins.substring 0 keep text else text;

  dataFiles = filter (name: match "postgresql-[0-9]+\\.json" name != null) (attrNames (readDir generated));

  # The flake attribute name, computed here independently of the driver and
  # compared with the name the driver wrote: the two must agree.
  attrName = entry: "postgresql-${replaceStrings [ "." ] [ "_" ] entry.version}-${entry.targetSuffix}";

  # An entry's aliases may only be its major's alias or the target's
  # newest-release alias; which entry is newest is the driver's verdict.
  aliasNames = entry: [
    "postgresql-${toString entry.major}-${entry.targetSuffix}"
    "postgresql-${entry.targetSuffix}"
  ];

  checkEntry =
    entry:
    if attrName entry != entry.attr then
      throw "pgbin: generated entry ${entry.attr} disagrees with the computed name ${attrName entry}"
    else if filter (alias: !builtins.elem alias (aliasNames entry)) entry.aliases != [ ] then
      throw "pgbin: generated entry ${entry.attr} has an alias that is not its major's or its target's"
    else
      entry;

  entries = map checkEntry (concatMap (file: (fromJSON (readFile (generated + "/${file}"))).entries) dataFiles);

  # Every system of the target matrix, whether or not a release is buildable
  # on it yet, so the driver, apps and dev shells exist everywhere.
  systems = (fromJSON (readFile (generated + "/systems.json"))).systems;

  # Extra build parameters that depend on how an entry is built. Cross builds
  # of PostgreSQL 16+ on Linux must export backend symbols explicitly, and
  # cross builds compile time zone data with the target's own zic under the
  # target's emulator (configure requires ZIC when cross-compiling).
  buildParameters = entry: {
    inherit (entry)
      version
      major
      configureFlags
      archiveName
      sourceDateEpoch
      ;
    archiveStem = removeSuffix ".tar.gz" entry.archiveName;
    crossExportDynamic = entry.cross && entry.os == "linux" && entry.major >= 16;
    emulatedZic = entry.cross;
    # The archive can be smoke-tested where it is built: glibc Linux, native
    # or cross (under the target's emulator; see nix/smoke.nix).
    smokeTestable = entry.os == "linux" && entry.libc == "glibc";
  };

  entriesFor = system: listToAttrs (map (entry: {
    name = entry.attr;
    value = entry;
  }) (filter (entry: entry.system == system) entries));

  # The newest release of each major per target: the entries that carry
  # aliases. Smoke checks and hydraJobs cover these, not every release.
  newestEntriesFor = system: filter (entry: entry.aliases != [ ]) (builtins.attrValues (entriesFor system));

  # alias name -> the attribute it stands for, on `system`.
  aliasesFor =
    system:
    listToAttrs (
      concatMap (
        entry:
        map (alias: {
          name = alias;
          value = entry.attr;
        }) entry.aliases
      ) (newestEntriesFor system)
    );
in
{
  inherit
    aliasesFor
    attrName
    buildParameters
    entries
    entriesFor
    genAttrs
    newestEntriesFor
    systems
    ;

  # What the flake exposes, reduced to plain data: for each system, each
  # attribute with the parameters it is built from. Tests compare this with
  # the driver's own view (`pgbin versions --json`, `pgbin targets --json`).
  summary = genAttrs systems (
    system:
    builtins.mapAttrs (_: entry: {
      inherit (entry)
        target
        packageSet
        cross
        ;
      sourceName = entry.source.name;
      sourceHash = entry.source.hash;
      trust = entry.source.trust;
      parameters = buildParameters entry;
    }) (entriesFor system)
  );
}
