#!/bin/sh
# Relocation for the musl parity build (dockerfiles/Dockerfile.linux-musl),
# the same recipe pgbin's relocate module applies to host and Nix builds:
#   1. bundle every library an ELF file needs, except musl itself, into lib/;
#   2. RUNPATH bin/* -> $ORIGIN/../lib, lib/* -> $ORIGIN,
#      lib/postgresql/* -> $ORIGIN/.. (one `..` per directory below lib/);
#   3. fail if any file still names the staging or build directory;
#   4. write <stem>.tar.gz (GNU tar, names sorted, mtime SOURCE_DATE_EPOCH,
#      owner 0:0, gzip without name or time) and its .sha256.
# Usage: relocate-musl.sh STAGED_PREFIX STEM BUILD_DIR OUT_DIR SOURCE_DATE_EPOCH
#        relocate-musl.sh --runpath PREFIX FILE   (prints step 2's RUNPATH; for tests)
set -eu

is_elf() { [ "$(head -c 4 "$1" | od -An -c | tr -d ' \n')" = '177ELF' ]; }

runpath_for() {
  relative=${1#"$prefix"/}
  dir=$(dirname "$relative")
  depth=$(printf '%s' "$dir" | awk -F/ '{print NF}')
  case $relative in
    lib/*)
      if [ "$depth" -eq 1 ]; then echo '$ORIGIN'; else
        printf '$ORIGIN'; i=1; while [ "$i" -lt "$depth" ]; do printf '/..'; i=$((i + 1)); done; echo
      fi ;;
    *)
      printf '$ORIGIN'; i=0; while [ "$i" -lt "$depth" ]; do printf '/..'; i=$((i + 1)); done; echo '/lib' ;;
  esac
}

if [ "${1:-}" = --runpath ]; then
  prefix=$2
  runpath_for "$3"
  exit 0
fi

prefix=$1 stem=$2 build_dir=$3 out=$4 epoch=$5

# 1. Bundle: musl's ldd lists every library the loader maps, transitively.
find "$prefix" -type f | sort | while read -r file; do
  is_elf "$file" || continue
  ldd "$file" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' || true
done | sort -u | while read -r name path; do
  case $name in libc.musl-* | ld-musl-*) continue ;; esac
  [ -e "$prefix/lib/$name" ] || cp -L "$path" "$prefix/lib/$name"
done

# 2. RUNPATHs.
find "$prefix" -type f | sort | while read -r file; do
  is_elf "$file" || continue
  [ -n "$(patchelf --print-interpreter "$file" 2>/dev/null)" ] || [ -n "$(patchelf --print-soname "$file" 2>/dev/null)" ] \
    || case $file in *.so | *.so.*) : ;; *) continue ;; esac
  chmod u+w "$file"
  patchelf --set-rpath "$(runpath_for "$file")" "$file"
done

# 3. No build or staging path may remain (grep: 0 found, 1 none, 2 error).
status=0
grep -rl -e "$build_dir" -e "/stage/" "$prefix" >/tmp/remaining-paths || status=$?
case $status in
  1) ;;
  0) echo "relocate-musl.sh: build paths remain in:" >&2; cat /tmp/remaining-paths >&2; exit 1 ;;
  *) echo "relocate-musl.sh: grep failed while scanning for build paths" >&2; exit 1 ;;
esac

# 4. The archive, in pgbin's format.
mkdir -p "$out"
# No pipe: tar's own exit status must stop the script (set -e).
tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner --format=gnu \
  -C "$(dirname "$prefix")" -cf "$out/$stem.tar" "$stem"
gzip -n -9 "$out/$stem.tar"
(cd "$out" && sha256sum "$stem.tar.gz" >"$stem.tar.gz.sha256")
