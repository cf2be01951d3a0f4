import { shQuote } from './escape.ts';

export interface ImageJob {
  mac: string;
  /** Where the writer fetches the image (absolute URL). */
  imageUrl: string;
  /** SHA-256 of the uncompressed image; checked after writing when given. */
  sha256?: string | undefined;
  /** Target disk; undefined: the first disk the writer finds. */
  disk?: string | undefined;
  /** Grow the image's last partition to the end of the disk (sfdisk; GPT backup header moved first). */
  grow?: boolean | undefined;
  hooks: { installed: string; failed: string; progress: string };
}

/**
 * The job an image writer runs for one machine (issue "Diskless and image deployments"): stream the image onto the
 * disk (decompressing .gz/.zst on the way), report bytes written every few seconds, verify the SHA-256, sync,
 * phone home — or report the failure with the step that failed. POSIX sh with busybox tools (wget, gunzip,
 * sha256sum, dd, awk, wc), so a small initramfs can run it; every value is a single-quoted shell word.
 */
export function renderImageJob(job: ImageJob): string {
  const q = (what: string, value: string) => shQuote(value, what);
  return `#!/bin/sh
# Smelt image job for ${q('MAC', job.mac)}: rendered for this machine; its URLs carry the deployment's token.
set -u
url=${q('image URL', job.imageUrl)}
expected=${job.sha256 === undefined ? "''" : q('SHA-256', job.sha256)}
disk=${job.disk === undefined ? "''" : q('disk', job.disk)}
grow=${job.grow === true ? '1' : '0'}
installed=${q('phone-home URL', job.hooks.installed)}
failed=${q('failure URL', job.hooks.failed)}
progress=${q('progress URL', job.hooks.progress)}

# Reports never hang the job: 15 s each (busybox 1.35's own wget -T crashes on a refused connection).
post() { timeout 15 wget -q -O /dev/null --post-data="$2" "$1"; }
fail() { echo "smelt-image: FAILED: $1"; post "$failed" "$1" || true; exit 1; }

# The first whole disk when none is named (no partitions, no loop, ram or optical devices).
if [ -z "$disk" ]; then
  for name in $(ls /sys/block); do
    case "$name" in loop*|ram*|sr*|fd*|zram*|nbd*|md*|dm-*|mmcblk*boot*|mmcblk*rpmb) continue ;; esac
    disk=/dev/$name
    break
  done
fi
[ -n "$disk" ] && [ -b "$disk" -o -f "$disk" ] || fail "no disk to write to ($disk)"

# By the name in the URL's path (a query string does not count).
case "\${url%%[?#]*}" in
  *.gz) decompress="gunzip -c" ;;
  *.zst) decompress="zstd -dc" ;;
  *.xz) decompress="unxz -c" ;;
  *) decompress="cat" ;;
esac

# Bytes written, from the block layer's counters (sectors of 512 bytes), or the file's size for a file "disk".
written() {
  if [ -b "$disk" ]; then awk '{ print $7 * 512 }' "/sys/block/\${disk##*/}/stat"; else wc -c < "$disk"; fi
}
start=$(written)
rm -f /tmp/smelt-image.done
# The reporter stops by itself once the flag exists, after its current report: none can arrive after the last.
( while [ ! -e /tmp/smelt-image.done ]; do sleep 3; [ -e /tmp/smelt-image.done ] || post "$progress" "bytes=$(( $(written) - start ))" || true; done ) &
reporter=$!
stop_reporter() { touch /tmp/smelt-image.done; wait "$reporter" 2>/dev/null; }

# The stream is hashed and counted on its way to dd (busybox dd reports records, not bytes).
rm -f /tmp/smelt-image.sum /tmp/smelt-image.fifo /tmp/smelt-image.count /tmp/smelt-image.bytes
mkfifo /tmp/smelt-image.fifo /tmp/smelt-image.count
sha256sum < /tmp/smelt-image.fifo > /tmp/smelt-image.sum &
summer=$!
wc -c < /tmp/smelt-image.count > /tmp/smelt-image.bytes &
counter=$!
echo "smelt-image: writing $url to $disk"
if ! { wget -q -O - "$url" || echo FETCH-FAILED > /tmp/smelt-image.fetch; } | $decompress | tee /tmp/smelt-image.fifo /tmp/smelt-image.count | dd of="$disk" bs=1M conv=fsync 2>/tmp/smelt-image.dd; then
  stop_reporter
  fail "writing to $disk failed: $(tail -n 1 /tmp/smelt-image.dd)"
fi
wait "$summer"
wait "$counter"
stop_reporter
[ -e /tmp/smelt-image.fetch ] && fail "could not fetch $url"
sync
# The bytes that went into dd are the image's size; the block layer's counter may include the kernel's own writes.
total=$(( $(cat /tmp/smelt-image.bytes) ))
post "$progress" "bytes=$total&done=1" || true
sum=$(cut -d ' ' -f 1 /tmp/smelt-image.sum)
if [ -n "$expected" ] && [ "$sum" != "$expected" ]; then fail "SHA-256 $sum, expected $expected"; fi
if [ "$grow" = 1 ]; then
  command -v sfdisk >/dev/null || fail "growing the last partition needs sfdisk in the image writer"
  # A GPT image's backup header sits at the image's end, not the disk's: move it first.
  sfdisk --relocate gpt-bak-std "$disk" >/dev/null 2>&1 || true
  last=$(sfdisk -d "$disk" | grep -c '^/dev/')
  [ "$last" -gt 0 ] || fail "no partition to grow on $disk"
  echo ', +' | sfdisk --no-reread -N "$last" "$disk" > /tmp/smelt-image.grow 2>&1 ||
    fail "growing partition $last of $disk failed: $(tail -n 1 /tmp/smelt-image.grow)"
  echo "smelt-image: grew partition $last of $disk to the end of the disk"
fi
echo "smelt-image: wrote $total bytes, sha256 $sum"
post "$installed" "sha256=$sum" || fail "could not phone home"
`;
}
