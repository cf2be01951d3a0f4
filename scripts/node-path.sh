# Sourced by bin/smeltd, bin/smeltctl, scripts/setup.sh and run.sh: puts a Node >= 24 (and pnpm) first on PATH.
# Prefers the Node and pnpm that scripts/setup.sh installed into .tools (the machine's own may be older), then the PATH's.
# The repo root is found by walking up from $0 (the sourcing script) to pnpm-workspace.yaml, then from the working
# directory; a caller that already knows it may set smelt_root (unexported) before sourcing.
# shellcheck shell=sh
if [ -z "${smelt_root:-}" ] || [ ! -f "$smelt_root/pnpm-workspace.yaml" ]; then
  for smelt_start in "$(readlink -f -- "$0" 2>/dev/null || :)" "$PWD/."; do
    smelt_root=$(dirname -- "${smelt_start:-/}")
    while [ ! -f "$smelt_root/pnpm-workspace.yaml" ] && [ "$smelt_root" != / ] && [ "$smelt_root" != . ]; do
      smelt_root=$(dirname -- "$smelt_root")
    done
    if [ -f "$smelt_root/pnpm-workspace.yaml" ]; then break; fi
  done
fi
smelt_tools=$smelt_root/.tools/node_modules
if [ -x "$smelt_tools/.bin/pnpm" ]; then
  PATH="$smelt_tools/.bin:$PATH"
fi
for smelt_node in "$smelt_tools"/node-linux-*/bin/node; do
  if [ -x "$smelt_node" ]; then PATH="${smelt_node%/node}:$PATH"; fi
done
export PATH
# `node --version` (v24.21.0) costs a few ms; asking node to evaluate code costs ~40 ms on every start.
smelt_node_major=$(node --version 2>/dev/null || :)
smelt_node_major=${smelt_node_major#v}
smelt_node_major=${smelt_node_major%%.*}
case $smelt_node_major in
  '' | *[!0-9]*) smelt_node_major=0 ;;
esac
if [ "$smelt_node_major" -lt 24 ]; then
  echo "smelt needs Node.js 24 or newer (found: $(node --version 2>/dev/null || echo none)); run $smelt_root/scripts/setup.sh" >&2
  exit 1
fi
