#!/usr/bin/env bash
# Applies the renames of issue 12 ("Names") to a netmesh tree, so that code written
# against the old names (other branches, merged later) follows.
#
#   tools/rename.sh [ROOT]      # ROOT defaults to the repository this script is in
#
# Idempotent: no new name is an old name, so running it twice, or on a tree that is
# already renamed, changes nothing. Whole words only (`EventFrame` does not touch
# `EventFrames`), case-sensitive, in *.rs and *.md files outside target/ and .git/.
# It leaves alone the files that define the deprecated net-mesh aliases
# (crates/*/src/compat.rs) and itself.
#
# net-mesh 0.23 (used by tools/differential) has methods named `encrypt_in_place` and
# `decrypt_in_place` too, as does RustCrypto's `AeadInPlace`: a changed file that names
# `net_mesh` or `AeadInPlace` is listed at the end; check that the calls renamed there
# are netmesh's.
set -euo pipefail

root=${1:-"$(cd "$(dirname "$0")/.." && pwd)"}
cd "$root"

# old new; `Batches` only where it is not the plain English word starting a sentence
# ("Batches of each kind ...").
map='
EventFrame      FrameCodec
EventFrames     OwnedEvents
FrameIter       BorrowedEvents
BatchBuild      BatchPackets
Batches         EventBatches
encrypt_in_place  seal_in_place
decrypt_in_place  open_in_place
decrypt_bytes     open_bytes
'

export RENAME_MAP="$map"
pattern='\b(EventFrames?|FrameIter|BatchBuild|Batches|encrypt_in_place|decrypt_in_place|decrypt_bytes)\b'

mapfile -t files < <(
    find . \( -name target -o -name .git \) -prune -o \
        -type f \( -name '*.rs' -o -name '*.md' \) \
        ! -path './tools/rename.sh' ! -path './crates/*/src/compat.rs' -print |
        xargs -r grep -lP "$pattern" || true
)

review=()
changed=()
for file in "${files[@]}"; do
    before=$(cksum <"$file")
    perl -pi -e '
        BEGIN {
            for (split /\n/, $ENV{RENAME_MAP}) {
                my ($old, $new) = split " ";
                $map{$old} = $new if defined $new;
            }
        }
        s/\b(EventFrames?|FrameIter|BatchBuild|encrypt_in_place|decrypt_in_place|decrypt_bytes)\b/$map{$1}/g;
        s/\bBatches\b(?! [a-z])/$map{Batches}/g;
    ' "$file"
    [[ $(cksum <"$file") == "$before" ]] && continue
    changed+=("$file")
    if grep -qE '\bnet_mesh::|AeadInPlace' "$file"; then
        review+=("$file")
    fi
    echo "renamed in $file"
done

# Renaming reorders imports and changes line lengths: format the changed Rust files as
# CI does (rustfmt finds rustfmt.toml above each file).
rust=()
for file in "${changed[@]}"; do
    [[ $file == *.rs ]] && rust+=("$file")
done
if ((${#rust[@]})) && command -v rustfmt >/dev/null; then
    rustfmt --edition 2021 "${rust[@]}" || echo "rustfmt failed; run cargo fmt --all"
fi

if ((${#review[@]})); then
    echo
    echo "check these files: they also use net-mesh or RustCrypto, whose methods may share an old name:"
    printf '  %s\n' "${review[@]}"
fi
