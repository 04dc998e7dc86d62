#!/bin/sh
# usage: scripts/package.sh DIR TARBALL
#
# Packs the contents of DIR into TARBALL (.tar.gz) and writes TARBALL.sha256
# beside it. The archive is reproducible: sorted names, fixed mtime, owner
# and modes, and no timestamp in the gzip header, so rebuilding the same
# version gives the same checksum.
set -eu

dir=$1
tarball=$2

[ -d "$dir" ] || { echo "package: $dir is not a directory" >&2; exit 1; }
mkdir -p "$(dirname "$tarball")"

tmp=$tarball.tmp.$$
trap 'rm -f "$tmp" "$tmp.tar"' EXIT

# Two steps instead of a pipe: POSIX sh has no pipefail.
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
    --mode=u+rw,go+r,go-w -C "$dir" -cf "$tmp.tar" .
gzip -n -9 <"$tmp.tar" >"$tmp"
mv "$tmp" "$tarball"

# The sum names the file relative to its directory, so check it with
# `cd dist && sha256sum -c NAME.sha256`.
(cd "$(dirname "$tarball")" && sha256sum "$(basename "$tarball")") >"$tarball.sha256.tmp"
mv "$tarball.sha256.tmp" "$tarball.sha256"
echo "package: $tarball $(cut -d' ' -f1 "$tarball.sha256")"
