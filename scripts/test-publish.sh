#!/usr/bin/env bash
# What crates.io and docs.rs get from the Rust crates, checked before a release needs it:
# licenses, metadata, READMEs that render away from the repository, the packaged files, and
# the documentation docs.rs builds. Called by scripts/test-all.sh; runs alone too.
#
# Published crates: isec-core (no path dependency) and isec-cli (the `isec` command, which
# depends on isec-core by path and by version). Every other workspace member is
# `publish = false`: the bindings ship as a wheel and npm packages, tests/gen and benches
# are not for users.
#
#   bash scripts/test-publish.sh
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
fail() { echo "test-publish: $*" >&2; exit 1; }
start=$SECONDS
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
published=(isec-core isec-cli)
unpublished=(isec-vectors isec-benches isec-python isec-node)

step "license files at the root (MIT and Apache-2.0, as every crate's \`license\` says)"
grep -qx 'Copyright (c) 2026 The isec authors' LICENSE-MIT || fail "LICENSE-MIT lacks the copyright line"
grep -q 'Permission is hereby granted, free of charge' LICENSE-MIT || fail "LICENSE-MIT is not the MIT text"
grep -q 'Version 2.0, January 2004' LICENSE-APACHE || fail "LICENSE-APACHE is not the Apache-2.0 text"
grep -q 'END OF TERMS AND CONDITIONS' LICENSE-APACHE || fail "LICENSE-APACHE is cut short"

step "READMEs shown by crates.io and PyPI link absolutely"
python3 scripts/readme_links.py core/README.md cli/README.md bindings-py/README.md

step "crate metadata (cargo metadata)"
cargo metadata --no-deps --format-version 1 >"$scratch/metadata.json"
python3 - "$scratch/metadata.json" "${published[*]}" "${unpublished[*]}" <<'PY'
import json, sys
with open(sys.argv[1]) as f:
    packages = {p["name"]: p for p in json.load(f)["packages"]}
published, unpublished = sys.argv[2].split(), sys.argv[3].split()
errors = []
for name in published:
    p = packages[name]
    if p["publish"] == []:
        errors.append(f"{name}: publish = false")
    if p['license'] != "MIT OR Apache-2.0":
        errors.append(f"{name}: license {p['license']!r}")
    for field in ("repository", "homepage"):
        if not (p[field] or "").startswith("https://github.com/isec-rs/isec"):
            errors.append(f"{name}: {field} {p[field]!r}")
    if not (p['documentation'] or "").startswith("https://"):
        errors.append(f"{name}: documentation {p['documentation']!r}")
    if not p["readme"]:
        errors.append(f"{name}: no readme")
    if not 1 <= len(p['keywords']) <= 5 or not p['categories']:
        errors.append(f"{name}: keywords {p['keywords']} categories {p['categories']}")
    # A path dependency without a version cannot be published.
    for d in p["dependencies"]:
        if d.get("path") and d["kind"] is None and d["req"] == "*":
            errors.append(f"{name}: path dependency {d['name']} has no version")
core = packages["isec-core"]
docs = (core["metadata"] or {}).get("docs", {}).get("rs", {})
if "aws-lc" not in docs.get("features", []):
    errors.append("isec-core: [package.metadata.docs.rs] does not document the aws-lc backend")
for name in unpublished:
    if name in packages and packages[name]["publish"] != []:
        errors.append(f"{name}: must be publish = false")
print("\n".join(errors) or "ok: " + ", ".join(published) + " publishable; " + ", ".join(unpublished) + " not")
sys.exit(1 if errors else 0)
PY

step "files each crate ships (cargo package --list)"
for crate in "${published[@]}"; do
  files=$(cargo package -q --list --allow-dirty -p "$crate")
  for f in LICENSE-MIT LICENSE-APACHE README.md Cargo.toml; do
    grep -qx "$f" <<<"$files" || fail "$crate: $f missing from the package"
  done
  echo "$crate: $(wc -l <<<"$files") files, licenses and README included"
done

step "isec-core builds from what it ships (cargo package, verified); isec-cli packs against it"
# isec-core has no path dependency: cargo package builds the .crate exactly as crates.io
# would serve it. isec-cli depends on isec-core by path and version; packaged together,
# cargo resolves it to the isec-core packaged beside it, so its .crate is made and its
# manifest checked before isec-core is on crates.io. Its verify build is left out: a debug
# build of the AWS SDK that no earlier step shares (cargo test builds with the test profile)
# would add minutes, and `cargo test --workspace` already builds the same sources.
# --allow-dirty: a developer may run this with uncommitted work; CI's clone is clean.
cargo package -q --allow-dirty -p isec-core
cargo package -q --allow-dirty --no-verify -p isec-core -p isec-cli
version=$(cargo pkgid -p isec-core | sed 's/.*[#@]//')
target_dir=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["target_directory"])' "$scratch/metadata.json")
for crate in "${published[@]}"; do
  tar -xzf "$target_dir/package/$crate-$version.crate" -C "$scratch"
done
python3 - "$scratch/isec-cli-$version/Cargo.toml" "$version" <<'PY' || fail "isec-cli's packaged manifest"
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    dep = tomllib.load(f)["dependencies"]["isec-core"]
# crates.io resolves a dependency by version alone; a path left in would be refused.
assert dep.get("version") == sys.argv[2] and "path" not in dep, dep
PY
echo "isec-core $version verified; isec-cli $version packed against it"

step "isec-core documentation as docs.rs builds it ([package.metadata.docs.rs]), warnings denied"
features=$(python3 -c 'import json, sys
packages = json.load(open(sys.argv[1]))["packages"]
print(",".join(next(p for p in packages if p["name"] == "isec-core")["metadata"]["docs"]["rs"]["features"]))' "$scratch/metadata.json")
# And with `aws-lc` alone: a link to an item behind another feature breaks there.
for set in "$features" aws-lc; do
  echo "features: $set"
  RUSTDOCFLAGS="-D warnings" cargo doc -q -p isec-core --no-deps --features "$set"
done

step "test-publish.sh passed in $((SECONDS - start)) s"
