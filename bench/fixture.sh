#!/usr/bin/env bash
# bench/fixture.sh WASMHOST DIR: fill DIR with the startup fixture that
# bench/run.sh serves: 20 prebuilt .wasm plugins (greet variants, tools
# greet_01 … greet_20) plus copies of the example source plugins. The
# variants' builds are cached (wasmhost's build cache), so only the first
# run pays for them. DIR must lie inside this module, so that the source
# plugins build against it.
set -euo pipefail
bin=$1 dir=$2
root=$(cd "$(dirname "$0")/.." && pwd)
src=$(dirname "$dir")/variants
mkdir -p "$dir" "$src"
for i in $(seq -w 1 20); do
  mkdir -p "$src/greet_$i"
  sed -e "s/Name:        \"greet\"/Name:        \"greet_$i\"/" "$root/plugins/greet/main.go" > "$src/greet_$i/main.go.new"
  if ! cmp -s "$src/greet_$i/main.go.new" "$src/greet_$i/main.go"; then
    mv "$src/greet_$i/main.go.new" "$src/greet_$i/main.go"
  else
    rm "$src/greet_$i/main.go.new"
  fi
done
"$bin" build "$src"/greet_* --log-level warn | while read -r d wasm _; do
  name=$(basename "${d%:}")
  cp "$wasm" "$dir/$name.wasm"
done
for p in "$root"/plugins/*/; do
  rm -rf "$dir/$(basename "$p")"
  cp -r "$p" "$dir/"
done
