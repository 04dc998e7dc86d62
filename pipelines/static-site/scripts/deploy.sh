#!/bin/sh
# usage: scripts/deploy.sh SERVICE VERSION ENV ROOT KEEP TITLE
#
# Installs dist/SERVICE-VERSION.tar.gz as ROOT/releases/VERSION, writes a
# config.json for ENV (with the site TITLE) into it, and switches ROOT/current to it atomically
# (a new symlink under a temporary name, renamed over `current`). Keeps the
# KEEP most recently deployed versions (plus whatever is current).
#
# Deploy and rollback both use it: a rollback only needs the tarball of the
# version it restores to still be in dist/.
set -eu

service=$1
version=$2
env=$3
root=$4
keep=$5
title=$6

case $version in
    '' | .* | *[!A-Za-z0-9._-]*)
        echo "deploy: '$version' is not a usable version (letters, digits, . _ - only)" >&2
        exit 1 ;;
esac
case $keep in
    '' | *[!0-9]* | 0)
        echo "deploy: keep_releases must be a positive number, got '$keep'" >&2
        exit 1 ;;
esac

tarball=dist/$service-$version.tar.gz
if [ ! -f "$tarball" ]; then
    echo "deploy: $tarball is missing: $service $version was never built here." >&2
    echo "deploy: build it first (stagecraft build --version $version), then deploy or roll back again." >&2
    exit 1
fi
if ! (cd dist && sha256sum -c --status --strict "$service-$version.tar.gz.sha256"); then
    echo "deploy: $tarball does not match $tarball.sha256; refusing to deploy it." >&2
    exit 1
fi

releases=$root/releases
target=$releases/$version
mkdir -p "$releases"

# Unpack beside the target, then move it into place.
stage=$releases/.$version.new.$$
old=$releases/.$version.old.$$
trap 'rm -rf "$stage" "$old" "$root/.current.$$"' EXIT
mkdir "$stage"
tar -xzf "$tarball" -C "$stage"
cat >"$stage/config.json" <<JSON
{
  "service": "$service",
  "version": "$version",
  "env": "$env",
  "title": "$title"
}
JSON

if [ -d "$target" ] && diff -r "$stage" "$target" >/dev/null 2>&1; then
    echo "deploy: $target already holds this build; reusing it"
    rm -rf "$stage"
else
    # A version rebuilt with different content (or deployed with another
    # title) replaces its old directory; if it is live, `current` dangles
    # between these two renames.
    [ ! -e "$target" ] || mv "$target" "$old"
    mv "$stage" "$target"
    rm -rf "$old"
    echo "deploy: unpacked $tarball into $target"
fi

previous=$(readlink "$root/current" 2>/dev/null || echo none)
ln -sfn "releases/$version" "$root/.current.$$"
mv -T "$root/.current.$$" "$root/current"
echo "deploy: $root/current -> releases/$version (was $previous)"

# Deploy history, oldest first; prune releases that are neither current nor
# among the KEEP most recently deployed versions.
echo "$version" >>"$root/history"
recent=$(tac "$root/history" | awk '!seen[$0]++' | head -n "$keep")
for dir in "$releases"/*; do
    [ -d "$dir" ] || continue
    name=${dir##*/}
    [ "$name" != "$version" ] || continue
    if ! printf '%s\n' "$recent" | grep -qxF "$name"; then
        rm -rf "$dir"
        echo "deploy: pruned $dir (keeping $keep releases)"
    fi
done
