#!/usr/bin/env bash
# Writes the software bill of materials: CycloneDX 1.5 JSON, one document per crate of the
# workspace, into target/sbom/ (or the folder given). Each lists the crate's whole resolved
# dependency graph for Linux x86_64 with versions, licences, package URLs and checksums, from
# cargo metadata and Cargo.lock. safeguard-cli.cdx.json describes the shipped `safeguard`
# binary. Installs cargo-cyclonedx (pinned) when it is missing; needs no network after that.
# Test-only crates appear with scope "excluded". cargo metadata unifies features with
# dev-dependencies, so a crate only a test feature pulls in (tempfile, through the store's
# test-support) is listed as required although the binary does not link it
# (`cargo tree -e normal -p safeguard-cli` is exact): the SBOM errs on the side of listing more.
#   scripts/sbom.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/sbom}"
version=0.5.9
if ! cargo cyclonedx --version 2>/dev/null | grep -qF "$version"; then
  echo "sbom: installing cargo-cyclonedx $version" >&2
  cargo install --locked cargo-cyclonedx --version "$version"
fi
# cargo-cyclonedx writes each document beside its crate's Cargo.toml; a private name keeps
# them apart from anything else there, and they are moved out at once.
name="safeguard-sbom-$$"
cleanup() { find crates -maxdepth 2 -name "$name*.cdx.json" -delete 2>/dev/null || true; }
trap cleanup EXIT
cargo cyclonedx --format json --spec-version 1.5 --target x86_64-unknown-linux-gnu \
  --override-filename "$name"
mkdir -p "$out"
for doc in crates/*/"$name".json; do
  crate="$(basename "$(dirname "$doc")")"
  mv "$doc" "$out/safeguard-$crate.cdx.json"
done
ls -1 "$out"/*.cdx.json
