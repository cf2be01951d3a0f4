#!/usr/bin/env bash
# Regenerates the DHCP golden fixtures in this directory from real clients on the wire.
#
# Everything happens inside network namespaces this script creates and removes again; no host interface is touched.
#   lab ns    br0 (10.77.0.1/24) + tap0 (QEMU) + vb1 (veth to the client ns) [+ vb2 (veth to the alt ns)]
#             dnsmasq (DHCP + TFTP, port=0), tcpdump on br0
#   cli ns    vc0: busybox udhcpc, then ISC dhclient (own MAC each, private lease file, script /bin/true)
#   alt ns    va0 (10.77.0.2/24): a plain address-only dnsmasq while the lab ns runs dnsmasq in proxy mode
#
# Phase 1 (dnsmasq as full DHCP server): QEMU SeaBIOS + iPXE e1000 ROM, QEMU OVMF (native UEFI PXE, then the
#   ipxe.efi it chainloads over TFTP), udhcpc, dhclient.
# Phase 2 (dnsmasq in proxy mode beside a plain DHCP server): QEMU SeaBIOS + iPXE ROM again, for the ProxyDHCP
#   offer and the PXE boot-server exchange on port 4011.
#
# Usage: sudo ./capture.sh            (root; needs qemu-system-x86, ipxe, ipxe-qemu, ovmf, dnsmasq-base, tcpdump,
#                                      busybox, isc-dhcp-client, python3-scapy)
#        KEEP_WORK=1 ./capture.sh     keeps the scratch directory (pcaps, logs) under /tmp/capture-dhcp.*
# Writes <client>-<message>.hex here: `#` comment lines, then the UDP payload in lower-case hex, 32 bytes a line.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${OUT:-$HERE}
WORK=$(mktemp -d /tmp/capture-dhcp.XXXXXX)
NS=capdhcp-$$
NSC=capcli-$$
NSA=capalt-$$

BIOS_MAC=52:54:00:12:34:56
UEFI_MAC=52:54:00:12:34:57
VIRTIO_MAC=52:54:00:12:34:58
UDHCPC_MAC=52:54:00:aa:00:01
DHCLIENT_MAC=52:54:00:aa:00:02
# Bytes chosen so the SMBIOS (mixed-endian) encoding in option 97 is visible.
VM_UUID=00112233-4455-6677-8899-aabbccddeeff

PIDS=()
cleanup() {
  local rc=$?
  set +e
  for pid in "${PIDS[@]+"${PIDS[@]}"}"; do kill "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]+"${PIDS[@]}"}"; do wait "$pid" 2>/dev/null; done
  for ns in "$NS" "$NSC" "$NSA"; do ip netns delete "$ns" 2>/dev/null; done
  if [[ ${KEEP_WORK:-} == 1 ]]; then echo "scratch kept in $WORK" >&2; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "capture: $*" >&2; }

# Starts a command in the background, remembers its PID for cleanup. `ip netns exec` execs, so $! is the command.
spawn() {
  "$@" &
  PIDS+=("$!")
  LAST_PID=$!
}

# Drops a reaped PID from the cleanup list, so cleanup never signals a recycled PID.
forget() {
  local pid=$1 kept=() p
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do [[ $p == "$pid" ]] || kept+=("$p"); done
  PIDS=("${kept[@]+"${kept[@]}"}")
}

stop() {
  local pid=$1 sig=${2:-TERM}
  kill -s "$sig" "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  forget "$pid"
}

# wait_for FILE PATTERN COUNT TIMEOUT: until PATTERN occurs COUNT times in FILE.
wait_for() {
  local file=$1 pattern=$2 count=$3 timeout=$4 i
  for ((i = 0; i < timeout * 2; i++)); do
    if [[ -f $file ]] && (($(grep -c -- "$pattern" "$file" || true) >= count)); then return 0; fi
    sleep 0.5
  done
  log "timed out waiting for $count x '$pattern' in $file"
  return 1
}

# ---------------------------------------------------------------- network
ip netns add "$NS"
ip netns add "$NSC"
ip netns add "$NSA"
for ns in "$NS" "$NSC" "$NSA"; do ip -n "$ns" link set lo up; done
ip -n "$NS" link add br0 type bridge
ip -n "$NS" link set br0 type bridge stp_state 0 forward_delay 0
ip -n "$NS" tuntap add tap0 mode tap
ip -n "$NS" link set tap0 master br0
ip -n "$NS" link add vb1 type veth peer name vc0 netns "$NSC"
ip -n "$NS" link set vb1 master br0
ip -n "$NS" link add vb2 type veth peer name va0 netns "$NSA"
ip -n "$NS" link set vb2 master br0
for link in br0 tap0 vb1 vb2; do ip -n "$NS" link set "$link" up; done
ip -n "$NS" addr add 10.77.0.1/24 dev br0
ip -n "$NS" route add 255.255.255.255/32 dev br0
ip -n "$NSA" addr add 10.77.0.2/24 dev va0
ip -n "$NSA" link set va0 up
ip -n "$NSA" route add 255.255.255.255/32 dev va0

mkdir -p "$WORK/tftp"
cp /usr/lib/ipxe/undionly.kpxe /usr/lib/ipxe/ipxe.efi "$WORK/tftp/"
cp /usr/lib/ipxe/undionly.kpxe "$WORK/tftp/undionly.0" # pxe-service appends .0

# ---------------------------------------------------------------- helpers
start_tcpdump() { # start_tcpdump NAME
  spawn ip netns exec "$NS" tcpdump -i br0 -n -U -s 0 -w "$WORK/$1.pcap" 'udp port 67 or udp port 68 or udp port 4011' \
    2>"$WORK/$1.tcpdump.log"
  TCPDUMP_PID=$LAST_PID
  sleep 1.5
}

start_dnsmasq() { # start_dnsmasq NS CONF NAME
  spawn ip netns exec "$1" dnsmasq --keep-in-foreground --conf-file="$2" --log-facility="$WORK/$3.log" \
    --pid-file="$WORK/$3.pid" --dhcp-leasefile="$WORK/$3.leases"
  sleep 1
}

boot_vm() { # boot_vm NAME MAC firmware(bios|uefi) [NIC]: starts QEMU on tap0 and sets VM_PID
  local name=$1 mac=$2 fw=$3 nic=${4:-e1000} extra=()
  if [[ $fw == uefi ]]; then
    cp /usr/share/OVMF/OVMF_VARS.fd "$WORK/$name-vars.fd"
    extra=(-drive "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE.fd"
      -drive "if=pflash,format=raw,unit=1,file=$WORK/$name-vars.fd")
  fi
  spawn timeout 300 ip netns exec "$NS" qemu-system-x86_64 -accel tcg -m 256 -display none -monitor none \
    -serial "file:$WORK/$name.serial" -uuid "$VM_UUID" "${extra[@]}" \
    -netdev tap,id=n0,ifname=tap0,script=no,downscript=no -device "$nic,netdev=n0,mac=$mac" -boot n
  VM_PID=$LAST_PID
}

# ---------------------------------------------------------------- phase 1: dnsmasq as the DHCP server
cat >"$WORK/server.conf" <<EOF
port=0
interface=br0
bind-interfaces
user=root
group=root
log-dhcp
dhcp-range=10.77.0.100,10.77.0.199,255.255.255.0,1h
enable-tftp
tftp-root=$WORK/tftp
dhcp-userclass=set:ipxe,iPXE
dhcp-match=set:efi64,option:client-arch,7
dhcp-boot=tag:ipxe,http://10.77.0.1/boot.ipxe
dhcp-boot=tag:!ipxe,tag:efi64,ipxe.efi
dhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe
EOF

start_tcpdump phase1
start_dnsmasq "$NS" "$WORK/server.conf" server
SERVER_PID=$LAST_PID

log "phase 1: SeaBIOS + iPXE ROM"
boot_vm bios "$BIOS_MAC" bios
wait_for "$WORK/server.log" "DHCPACK(br0) .* $BIOS_MAC" 1 120
sleep 2
stop "$VM_PID"

# QEMU's e1000 option ROM under OVMF is iPXE's EFI driver: it boots first (its own LoadFile, "iPXE" user class),
# fails on the HTTP URL, then OVMF's own PXE (over the ROM's SNP/NII) runs and chainloads ipxe.efi, which asks again.
log "phase 1: OVMF + e1000: iPXE EFI ROM, OVMF native PXE, then the chainloaded ipxe.efi"
boot_vm uefi "$UEFI_MAC" uefi
wait_for "$WORK/server.log" "DHCPACK(br0) .* $UEFI_MAC" 3 300
sleep 2
stop "$VM_PID"

# virtio-net without its option ROM: OVMF's own VirtioNetDxe, so OVMF's PXE is the first and only firmware client.
log "phase 1: OVMF + virtio-net (no option ROM): OVMF native PXE"
boot_vm uefi-virtio "$VIRTIO_MAC" uefi "virtio-net-pci,romfile="
wait_for "$WORK/server.log" "DHCPACK(br0) .* $VIRTIO_MAC" 1 240
sleep 2
stop "$VM_PID"

log "phase 1: busybox udhcpc"
ip -n "$NSC" link set vc0 address "$UDHCPC_MAC"
ip -n "$NSC" link set vc0 up
sleep 1
spawn timeout 60 ip netns exec "$NSC" busybox udhcpc -f -q -n -i vc0 -s /bin/true
UDHCPC_PID=$LAST_PID
wait "$UDHCPC_PID" || log "udhcpc exited with $?"
forget "$UDHCPC_PID"

log "phase 1: ISC dhclient"
ip -n "$NSC" link set vc0 down
ip -n "$NSC" link set vc0 address "$DHCLIENT_MAC"
ip -n "$NSC" link set vc0 up
sleep 1
# Its own UTS namespace so `send host-name = gethostname()` (Debian's default dhclient.conf) sends a fixed name.
spawn timeout 60 ip netns exec "$NSC" unshare --uts sh -c "hostname smelt-capture && exec dhclient -4 -d -v \
  -cf /etc/dhcp/dhclient.conf -sf /bin/true -lf '$WORK/dhclient.leases' -pf '$WORK/dhclient.pid' vc0" \
  2>"$WORK/dhclient.log"
DHCLIENT_PID=$LAST_PID
wait_for "$WORK/server.log" "DHCPACK(br0) .* $DHCLIENT_MAC" 1 60
sleep 1
stop "$DHCLIENT_PID"

stop "$SERVER_PID"
sleep 1
stop "$TCPDUMP_PID" INT

# ---------------------------------------------------------------- phase 2: dnsmasq in proxy mode
cat >"$WORK/plain.conf" <<EOF
port=0
interface=va0
bind-interfaces
user=root
group=root
log-dhcp
dhcp-range=10.77.0.100,10.77.0.199,255.255.255.0,1h
EOF
cat >"$WORK/proxy.conf" <<EOF
port=0
interface=br0
bind-interfaces
user=root
group=root
log-dhcp
dhcp-range=10.77.0.0,proxy
enable-tftp
tftp-root=$WORK/tftp
pxe-prompt="Smelt capture",0
pxe-service=x86PC,"Boot undionly.kpxe",undionly
EOF

start_tcpdump phase2
start_dnsmasq "$NSA" "$WORK/plain.conf" plain
PLAIN_PID=$LAST_PID
start_dnsmasq "$NS" "$WORK/proxy.conf" proxy
PROXY_PID=$LAST_PID

# The ROM takes the address from the plain server and the boot menu from the proxy, asks the proxy on port 4011 for
# the menu item, TFTPs undionly.0 (undionly.kpxe) and runs it; undionly.kpxe then does its own DHCP.
log "phase 2: SeaBIOS + iPXE ROM against ProxyDHCP, then undionly.kpxe"
boot_vm proxy-bios "$BIOS_MAC" bios
wait_for "$WORK/plain.log" "DHCPACK(va0) .* $BIOS_MAC" 2 180
sleep 2
stop "$VM_PID"
stop "$PROXY_PID"
stop "$PLAIN_PID"
sleep 1
stop "$TCPDUMP_PID" INT

# ---------------------------------------------------------------- extract
/usr/bin/python3 - "$WORK" "$OUT" "$BIOS_MAC" "$UEFI_MAC" "$VIRTIO_MAC" "$UDHCPC_MAC" "$DHCLIENT_MAC" <<'PY'
import sys
from scapy.all import rdpcap, UDP, IP

work, out, bios, uefi, virtio, udhcpc, dhclient = sys.argv[1:]
names = {1: 'discover', 2: 'offer', 3: 'request', 4: 'decline', 5: 'ack', 6: 'nak', 7: 'release', 8: 'inform'}


def options(payload):
    opts, i = {}, 240
    while i < len(payload):
        code = payload[i]
        if code == 0:
            i += 1
            continue
        if code == 255 or i + 1 >= len(payload):
            break
        length = payload[i + 1]
        opts.setdefault(code, payload[i + 2 : i + 2 + length])
        i += 2 + length
    return opts


def mac(payload):
    return ':'.join(f'{b:02x}' for b in payload[28:34])


def client_name(payload, opts, state):
    m = mac(payload)
    if m == bios:
        # In phase 2 everything after the PXE boot-server exchange on 4011 comes from the chainloaded undionly.kpxe.
        return 'undionly' if state.get('pxebs') else 'ipxe-bios'
    if m == uefi:
        if b'iPXE' not in opts.get(77, b''):
            state['ovmf'] = True
            return 'ovmf-pxe'
        # iPXE before OVMF's own PXE is the e1000 option ROM; after it, the ipxe.efi that OVMF chainloaded.
        return 'ipxe-efi' if state.get('ovmf') else 'ipxe-efi-rom'
    if m == virtio:
        return 'ovmf-pxe-virtio'
    if m == udhcpc:
        return 'udhcpc'
    if m == dhclient:
        return 'dhclient'
    return None


def write(name, payload, packet, note):
    path = f'{out}/{name}.hex'
    hexed = payload.hex()
    lines = [hexed[i : i + 64] for i in range(0, len(hexed), 64)]
    ip, udp = packet[IP], packet[UDP]
    with open(path, 'w') as f:
        f.write(f'# {note}\n')
        f.write(f'# {ip.src}:{udp.sport} -> {ip.dst}:{udp.dport}, {len(payload)} bytes, captured by capture.sh\n')
        f.write('\n'.join(lines) + '\n')
    print(f'wrote {name}.hex ({len(payload)} bytes)', file=sys.stderr)


seen = set()


def keep(name, payload, packet, note):
    if name not in seen:
        seen.add(name)
        write(name, payload, packet, note)


for phase in ('phase1', 'phase2'):
    # The UEFI client is answered as OVMF first and as iPXE EFI later; remember which one each xid belongs to.
    client_of_xid = {}
    state = {}
    for packet in rdpcap(f'{work}/{phase}.pcap'):
        if UDP not in packet or IP not in packet:
            continue
        payload = bytes(packet[UDP].payload)
        if len(payload) < 240 or payload[236:240] != b'\x63\x82\x53\x63':
            continue
        opts = options(payload)
        kind = names.get(opts.get(53, b'\0')[0], 'unknown')
        xid = payload[4:8]
        if payload[0] == 1:
            client = client_name(payload, opts, state)
            if client is None:
                continue
            client_of_xid[xid] = client
            if phase == 'phase1' or client == 'undionly':
                keep(f'{client}-{kind}', payload, packet, f'{client} {kind.upper()}')
            elif client == 'ipxe-bios' and packet[UDP].dport == 4011:
                state['pxebs'] = True
                keep(f'{client}-pxebs-{kind}', payload, packet, f'{client} {kind.upper()} to the PXE boot server (4011)')
            elif client == 'ipxe-bios':
                keep(f'{client}-proxy-{kind}', payload, packet, f'{client} {kind.upper()} beside a ProxyDHCP server')
        else:
            client = client_of_xid.get(xid)
            if phase == 'phase1':
                if client == 'ipxe-bios':
                    keep(f'dnsmasq-{kind}', payload, packet, f'dnsmasq {kind.upper()} to ipxe-bios')
                elif client == 'ovmf-pxe':
                    keep(f'dnsmasq-{kind}-ovmf', payload, packet, f'dnsmasq {kind.upper()} to ovmf-pxe')
            elif client == 'ipxe-bios' and packet[IP].src == '10.77.0.1':
                where = 'pxebs-' if packet[UDP].sport == 4011 else ''
                keep(f'dnsmasq-proxy-{where}{kind}', payload, packet,
                     f'dnsmasq (proxy mode) {kind.upper()} to ipxe-bios' + (' from port 4011' if where else ''))
PY
log "done"
