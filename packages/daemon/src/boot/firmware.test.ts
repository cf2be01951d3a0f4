import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { archName, chooseFirstStage, isNetworkBoot, type FirmwareFacts } from './firmware.ts';

const settings = {
  files: { bios: 'undionly.kpxe', efi64: 'ipxe.efi', arm64: 'arm64-efi/ipxe.efi' },
  httpBase: 'http://10.0.0.2',
  mac: '52:54:00:12:34:56',
};
const pick = (facts: FirmwareFacts) => chooseFirstStage(facts, settings);

describe('first stage by firmware', () => {
  test('BIOS PXE (93 = 0) gets undionly.kpxe over TFTP', () => {
    assert.deepEqual(pick({ archs: [0], vendorClass: 'PXEClient:Arch:00000:UNDI:002001', ipxe: false }), {
      kind: 'tftp',
      file: 'undionly.kpxe',
    });
  });

  test('a PXE ROM without option 93 is treated as BIOS', () => {
    assert.deepEqual(pick({ archs: [], vendorClass: 'PXEClient', ipxe: false }), {
      kind: 'tftp',
      file: 'undionly.kpxe',
    });
  });

  test('x86-64 UEFI (7 and 9) gets the configured EFI binary', () => {
    for (const code of [7, 9]) {
      assert.deepEqual(pick({ archs: [code], vendorClass: 'PXEClient:Arch:00007:UNDI:003000', ipxe: false }), {
        kind: 'tftp',
        file: 'ipxe.efi',
      });
    }
  });

  test('ARM64 UEFI (11) gets its own binary', () => {
    assert.deepEqual(pick({ archs: [11], vendorClass: 'PXEClient:Arch:00011:UNDI:003000', ipxe: false }), {
      kind: 'tftp',
      file: 'arm64-efi/ipxe.efi',
    });
  });

  test('UEFI HTTP Boot (16, HTTPClient) gets a URL', () => {
    assert.deepEqual(pick({ archs: [16], vendorClass: 'HTTPClient:Arch:00016:UNDI:003000', ipxe: false }), {
      kind: 'http',
      url: 'http://10.0.0.2/ipxe.efi',
    });
  });

  test('a client already in iPXE gets its per-MAC script, whatever its architecture', () => {
    for (const archs of [[0], [7], [11]]) {
      assert.deepEqual(pick({ archs, vendorClass: 'PXEClient:Arch:00000:UNDI:002001', ipxe: true }), {
        kind: 'script',
        url: 'http://10.0.0.2/boot/52-54-00-12-34-56.ipxe',
      });
    }
  });

  test('an architecture without a first stage is reported with its number', () => {
    assert.deepEqual(pick({ archs: [27], vendorClass: 'PXEClient', ipxe: false }), {
      kind: 'unsupported',
      arch: 27,
    });
    assert.deepEqual(pick({ archs: [4242], vendorClass: 'PXEClient', ipxe: false }), {
      kind: 'unsupported',
      arch: 4242,
    });
    assert.equal(archName(4242), 'arch-4242');
    assert.equal(archName(7), 'x86_64-efi');
  });

  test('only PXE, HTTP Boot and iPXE clients are network boots', () => {
    assert.equal(isNetworkBoot({ archs: [], vendorClass: 'udhcp 1.35.0', ipxe: false }), false);
    assert.equal(isNetworkBoot({ archs: [], ipxe: false }), false);
    assert.equal(isNetworkBoot({ archs: [0], vendorClass: 'PXEClient:Arch:00000', ipxe: false }), true);
    assert.equal(isNetworkBoot({ archs: [], ipxe: true }), true);
  });
});
