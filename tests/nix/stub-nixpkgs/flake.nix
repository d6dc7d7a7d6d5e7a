# A stand-in for nixpkgs in pgbin's tests, where nixpkgs cannot be fetched.
# It provides no packages at all: evaluating anything that needs one fails.
# The tests only list attribute names, which Nix evaluates lazily without
# touching package sets, so they exercise the real flake.nix structure.
{
  outputs = _: {
    legacyPackages = { };
  };
}
