import { runTool } from './run-tool.ts';

/** One target as tgtd lists it. */
export interface TgtTarget {
  tid: number;
  iqn: string;
}

/**
 * The Linux SCSI target framework's daemon (tgtd, Debian package `tgt`), driven through tgtadm. tgtd serves
 * iSCSI from user space, so it needs no kernel target modules (LIO's target_core is absent on some kernels,
 * this project's VM among them). `control` is tgtd's control port (`tgtd -C N`; 0 is the system's tgtd).
 */
export function tgtAdmin(options: { tgtadm?: string; control: number }) {
  const tgtadm = options.tgtadm ?? 'tgtadm';
  const admin = (...args: string[]): Promise<string> =>
    runTool(tgtadm, ['-C', String(options.control), '--lld', 'iscsi', ...args], `tgtadm ${args.join(' ')}`);

  return {
    /** Every target tgtd has ("Target 1: iqn..." lines of `--op show`). */
    async targets(): Promise<TgtTarget[]> {
      const listing = await admin('--mode', 'target', '--op', 'show');
      return [...listing.matchAll(/^Target (\d+): (\S+)$/gm)].map((match) => ({
        tid: Number(match[1]),
        iqn: match[2] ?? '',
      }));
    },
    /** A target with one LUN (1; LUN 0 is tgtd's controller) backed by `file`, open to one initiator name. */
    async create(tid: number, iqn: string, file: string, initiator: string): Promise<void> {
      await admin('--mode', 'target', '--op', 'new', '--tid', String(tid), '--targetname', iqn);
      try {
        await admin(
          '--mode',
          'logicalunit',
          '--op',
          'new',
          '--tid',
          String(tid),
          '--lun',
          '1',
          '--backing-store',
          file,
        );
        await admin('--mode', 'target', '--op', 'bind', '--tid', String(tid), '--initiator-name', initiator);
      } catch (error) {
        await admin('--mode', 'target', '--op', 'delete', '--force', '--tid', String(tid)).catch(() => undefined);
        throw error;
      }
    },
    /** Removes a target even while an initiator is logged in (--force): the machine was released. */
    async remove(tid: number): Promise<void> {
      await admin('--mode', 'target', '--op', 'delete', '--force', '--tid', String(tid));
    },
  };
}
export type TgtAdmin = ReturnType<typeof tgtAdmin>;
