import { shQuote } from './escape.ts';

export interface ImageJob {
  mac: string;
  /** Where the writer fetches the image (absolute URL). */
  imageUrl: string;
  /** SHA-256 of the uncompressed image; checked after writing when given. */
  sha256?: string | undefined;
  /** Target disk; undefined: the first disk the writer finds. */
  disk?: string | undefined;
  hooks: { installed: string; failed: string; progress: string };
}

/**
 * The job an image writer runs for one machine (issue "Diskless and image deployments"): stream the image onto the
 * disk (decompressing .gz/.zst on the way), report bytes written every few seconds, verify the SHA-256, sync,
 * phone home — or report the failure with the step that failed. POSIX sh with busybox tools (wget, gunzip,
 * sha256sum, dd, awk), so a small initramfs can run it; every value is a single-quoted shell word.
 */
export function renderImageJob(job: ImageJob): string {
  const q = (what: string, value: string) => shQuote(value, what);
  return `#!/bin/sh
# Smelt image job for ${q('MAC', job.mac)}: rendered for this machine; its URLs carry the deployment's token.
set -u
url=${q('image URL', job.imageUrl)}
expected=${job.sha256 === undefined ? "''" : q('SHA-256', job.sha256)}
disk=${job.disk === undefined ? "''" : q('disk', job.disk)}
installed=${q('phone-home URL', job.hooks.installed)}
failed=${q('failure URL', job.hooks.failed)}
progress=${q('progress URL', job.hooks.progress)}

post() { wget -q -O /dev/null --post-data="$2" "$1"; }
fail() { echo "smelt-image: FAILED: $1"; post "$failed" "$1" || true; exit 1; }

# The first whole disk when none is named (no partitions, no loop, ram or optical devices).
if [ -z "$disk" ]; then
  for name in $(ls /sys/block); do
    case "$name" in loop*|ram*|sr*|fd*|zram*) continue ;; esac
    disk=/dev/$name
    break
  done
fi
[ -n "$disk" ] && [ -b "$disk" -o -f "$disk" ] || fail "no disk to write to ($disk)"

case "$url" in
  *.gz) decompress="gunzip -c" ;;
  *.zst) decompress="zstd -dc" ;;
  *) decompress="cat" ;;
esac

# Bytes written, from the block layer's counters (sectors of 512 bytes), or the file's size for a file "disk".
written() {
  if [ -b "$disk" ]; then awk '{ print $7 * 512 }' "/sys/block/\${disk##*/}/stat"; else wc -c < "$disk"; fi
}
start=$(written)
( while sleep 3; do post "$progress" "bytes=$(( $(written) - start ))" || true; done ) &
reporter=$!

rm -f /tmp/smelt-image.sum /tmp/smelt-image.fifo
mkfifo /tmp/smelt-image.fifo
sha256sum < /tmp/smelt-image.fifo > /tmp/smelt-image.sum &
summer=$!
echo "smelt-image: writing $url to $disk"
if ! { wget -q -O - "$url" || echo FETCH-FAILED > /tmp/smelt-image.fetch; } | $decompress | tee /tmp/smelt-image.fifo | dd of="$disk" bs=1M conv=fsync 2>/tmp/smelt-image.dd; then
  kill "$reporter" 2>/dev/null
  fail "writing to $disk failed: $(tail -n 1 /tmp/smelt-image.dd)"
fi
wait "$summer"
kill "$reporter" 2>/dev/null
[ -e /tmp/smelt-image.fetch ] && fail "could not fetch $url"
sync
total=$(( $(written) - start ))
post "$progress" "bytes=$total&done=1" || true
sum=$(cut -d ' ' -f 1 /tmp/smelt-image.sum)
if [ -n "$expected" ] && [ "$sum" != "$expected" ]; then fail "SHA-256 $sum, expected $expected"; fi
echo "smelt-image: wrote $total bytes, sha256 $sum"
post "$installed" "sha256=$sum" || fail "could not phone home"
`;
}
