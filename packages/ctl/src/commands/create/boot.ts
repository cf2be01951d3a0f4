import { Flags } from '@oclif/core';
import { bootKinds, bootSpecSchema, installerFlavours } from '@smelt/shared/boot';
import { BaseCommand } from '../../base-command.ts';
import { validateFlags } from '../../flags/validate.ts';
import { definedOnly } from '../../flags/values.ts';

export default class CreateBoot extends BaseCommand {
  static override summary = 'Create a boot: what a machine boots and from where';
  static override examples = [
    '<%= config.bin %> create boot --name debian12 --kernel /srv/debian/linux --initrd /srv/debian/initrd.gz --flavour preseed',
    '<%= config.bin %> create boot --name ubuntu --upload ./ubuntu-24.04-live-server-amd64.iso --isoPrefix ubuntu --kernel casper/vmlinuz --initrd casper/initrd --flavour autoinstall',
    '<%= config.bin %> create boot --name alma9 --isoPath /srv/iso/alma9.iso --isoPrefix alma9 --kernel images/pxeboot/vmlinuz --initrd images/pxeboot/initrd.img --flavour kickstart',
  ];
  static override flags = {
    name: Flags.string({ description: 'name of the boot', required: true }),
    kind: Flags.option({ options: bootKinds, description: 'what booting it does [default: installer]' })(),
    flavour: Flags.option({
      options: installerFlavours,
      aliases: ['flavor'],
      description: 'answer-file flavour of an installer',
    })(),
    kernel: Flags.string({ description: 'kernel: a path, an http(s) URL, or a path inside the ISO' }),
    initrd: Flags.string({
      description: 'initrd, like --kernel (repeatable, loaded in order)',
      multiple: true,
      multipleNonGreedy: true,
    }),
    cmdline: Flags.string({ description: 'kernel command line template' }),
    isoPath: Flags.string({
      description: 'ISO image to serve the files from (absolute path on the server)',
      aliases: ['isopath', 'iso-path'],
    }),
    isoPrefix: Flags.string({
      description: 'URL prefix the ISO contents are served under',
      aliases: ['isoprefix', 'iso-prefix'],
    }),
    upload: Flags.string({
      description: 'a local ISO to upload to the daemon (checksummed, with progress) and serve this boot from',
      exclusive: ['isoPath'],
    }),
    description: Flags.string({ description: 'free text for people' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(CreateBoot);
    // With --upload, the daemon's path of the uploaded ISO stands in for --isoPath; the boot is checked (without
    // the ISO path) before the upload, so a typo does not cost a long upload.
    const uploadPath = flags.upload === undefined ? undefined : '/uploading.iso';
    const spec = validateFlags(
      bootSpecSchema,
      definedOnly({
        name: flags.name,
        kind: flags.kind,
        flavour: flags.flavour,
        kernel: flags.kernel,
        initrd: flags.initrd,
        cmdline: flags.cmdline,
        isoPath: flags.isoPath ?? uploadPath,
        isoPrefix: flags.isoPrefix,
        description: flags.description,
      }),
    );
    const client = await this.client(flags);
    if (flags.upload === undefined) {
      const boot = await client.call('createBoot', { body: spec });
      await this.printChange(boot, `boot "${boot.name}" created`, flags.output);
      return;
    }
    const { uploadIso, deleteIso } = await import('../../upload.ts');
    const connection = await this.connection(flags);
    const uploaded = await uploadIso(connection, spec.name, flags.upload);
    try {
      const boot = await client.call('createBoot', { body: { ...spec, isoPath: uploaded.path } });
      await this.printChange(
        boot,
        `boot "${boot.name}" created from the uploaded ISO (sha256 ${uploaded.sha256})`,
        flags.output,
      );
    } catch (error) {
      // Nothing half-registered: an ISO no boot uses is removed again.
      await deleteIso(connection, spec.name);
      throw error;
    }
  }
}
