#!/usr/bin/env bash
# Smelt's entry point, from any working directory:
#   ./run.sh start [smeltd flags...]   set up for running (scripts/setup.sh --for start), then run `smeltd start`
#   ./run.sh test                      set up for testing (scripts/setup.sh --for test), then `pnpm check`
#                                      (prettier check, eslint, tsc -b, the node:test suite)
#   ./run.sh demo                      set up for testing, then `pnpm demo` (a real VM installed, end to end)
#   ./run.sh setup [--for start|test]  only set up (default: everything `test` needs)
set -euo pipefail
root=$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")

usage() {
  cat <<USAGE
usage: ./run.sh start [smeltd flags...]   set up, then run the daemon (smeltd start)
       ./run.sh test                      set up, then run pnpm check (format, lint, typecheck, tests)
       ./run.sh demo                      set up, then show a VM being installed end to end (pnpm demo)
       ./run.sh setup [--for start|test]  only set up this machine and checkout
USAGE
}

case ${1:-} in
  start)
    shift
    bash "$root/scripts/setup.sh" --for start
    exec "$root/packages/daemon/bin/smeltd" start "$@"
    ;;
  test)
    shift
    if (($#)); then
      echo "run.sh: test takes no arguments (got: $*)" >&2
      usage >&2
      exit 2
    fi
    bash "$root/scripts/setup.sh" --for test
    cd "$root"
    smelt_root=$root
    # shellcheck source=scripts/node-path.sh
    . "$root/scripts/node-path.sh"
    exec pnpm check
    ;;
  demo)
    shift
    bash "$root/scripts/setup.sh" --for test
    cd "$root"
    smelt_root=$root
    # shellcheck source=scripts/node-path.sh
    . "$root/scripts/node-path.sh"
    exec pnpm demo
    ;;
  setup)
    shift
    exec bash "$root/scripts/setup.sh" "$@"
    ;;
  -h | --help | help)
    usage
    ;;
  *)
    usage >&2
    exit 2
    ;;
esac
