#!/bin/sh
# usage: scripts/healthcheck.sh ROOT VERSION ENV
#
# Reads ROOT/current back and checks that it serves VERSION for ENV: the
# page exists, carries the version stamp the build wrote, and the deployed
# config names the env.
set -eu

root=$1
version=$2
env=$3

page=$root/current/index.html
config=$root/current/config.json

if [ ! -s "$page" ]; then
    echo "healthcheck: $page is missing or empty" >&2
    exit 1
fi
if ! grep -qF "<meta name=\"stagecraft-version\" content=\"$version\">" "$page"; then
    found=$(grep -o 'name="stagecraft-version" content="[^"]*"' "$page" | cut -d'"' -f4) || true
    echo "healthcheck: $page serves '${found:-no version}', expected '$version'" >&2
    exit 1
fi
if ! grep -qF "\"env\": \"$env\"" "$config" 2>/dev/null; then
    echo "healthcheck: $config is missing or is not for env '$env'" >&2
    exit 1
fi
echo "healthcheck: $root/current serves $version for $env"
