import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { IsoError } from './errors.ts';
import { parseRockRidge, sharingProtocolSkip, type RockRidgeOptions } from './rockridge.ts';
import { susp } from './testdata/synthetic.ts';

function options(areas: Record<string, Buffer> = {}, overrides: Partial<RockRidgeOptions> = {}): RockRidgeOptions {
  return {
    skip: 0,
    maxContinuations: 8,
    maxNameBytes: 1024,
    maxLinkBytes: 4096,
    what: 'test record',
    continuation(lba, offset, length) {
      const area = areas[`${lba}:${offset}`];
      if (!area) return Promise.reject(new Error(`no area ${lba}:${offset}`));
      return Promise.resolve(area.subarray(0, length));
    },
    ...overrides,
  };
}

describe('Rock Ridge', () => {
  test('SP announces SUSP and its skip length; anything else does not', () => {
    assert.equal(sharingProtocolSkip(susp.sp(0)), 0);
    assert.equal(sharingProtocolSkip(Buffer.concat([susp.sp(3), susp.px(0o40755)])), 3);
    const bad = susp.sp(0);
    bad[4] = 0;
    assert.equal(sharingProtocolSkip(bad), undefined);
    assert.equal(sharingProtocolSkip(susp.px(0)), undefined);
  });

  test('NM: entries concatenated (continue flag), CURRENT/PARENT ignored', async () => {
    const area = Buffer.concat([susp.nm('a-very-', 1), susp.nm('long-name'), susp.nm('', 2)]);
    assert.equal((await parseRockRidge(area, options())).name, 'a-very-long-name');
  });

  test('NM in UTF-8', async () => {
    assert.equal((await parseRockRidge(susp.nm('café ñ'), options())).name, 'café ñ');
  });

  test('SL: components with root, current, parent and continued components across entries', async () => {
    const absolute = susp.sl([{ flags: 8 }, { text: 'usr' }, { text: 'lib' }]);
    assert.equal((await parseRockRidge(absolute, options())).symlink, '/usr/lib');
    const relative = Buffer.concat([
      susp.sl([{ flags: 4 }, { flags: 2 }, { text: 'boot', continued: true }], 1),
      susp.sl([{ text: 'loader' }, { text: 'x' }]),
    ]);
    assert.equal((await parseRockRidge(relative, options())).symlink, '.././bootloader/x');
  });

  test('PX mode, CL, PL, RE, ZF', async () => {
    const area = Buffer.concat([susp.px(0o100644), susp.cl(99), susp.pl(7), susp.re(), susp.zf(123456)]);
    const rock = await parseRockRidge(area, options());
    assert.equal(rock.mode, 0o100644);
    assert.equal(rock.childLink, 99);
    assert.equal(rock.parentLink, 7);
    assert.equal(rock.relocated, true);
    assert.deepEqual(rock.compressed, { algorithm: 'pz', size: 123456 });
  });

  test('the skip length applies to the record area; ST ends it', async () => {
    const area = Buffer.concat([Buffer.from([0xee, 0xee]), susp.nm('seen'), susp.st(), susp.px(0o120777)]);
    const rock = await parseRockRidge(area, options({}, { skip: 2 }));
    assert.equal(rock.name, 'seen');
    assert.equal(rock.mode, undefined);
  });

  test('CE: continuation areas are followed (a name split over two areas)', async () => {
    const areas = { '40:100': Buffer.concat([susp.nm('second-half'), susp.ce(41, 0, 36)]), '41:0': susp.px(0o100600) };
    const area = Buffer.concat([susp.nm('first-', 1), susp.ce(40, 100, areas['40:100'].length)]);
    const rock = await parseRockRidge(area, options(areas));
    assert.equal(rock.name, 'first-second-half');
    assert.equal(rock.mode, 0o100600);
  });

  test('a CE cycle is an IsoError loop; a long chain hits the limit; an area leaving its block is malformed', async () => {
    const loop = { '40:0': susp.ce(41, 0, 28), '41:0': susp.ce(40, 0, 28) };
    await assert.rejects(async () => parseRockRidge(susp.ce(40, 0, 28), options(loop)), {
      name: 'IsoError',
      code: 'loop',
    });
    const chain: Record<string, Buffer> = {};
    for (let i = 0; i < 20; i++) chain[`${100 + i}:0`] = susp.ce(101 + i, 0, 28);
    await assert.rejects(async () => parseRockRidge(susp.ce(100, 0, 28), options(chain)), { code: 'limit' });
    await assert.rejects(async () => parseRockRidge(susp.ce(40, 2000, 100), options()), { code: 'malformed' });
  });

  test('truncated entries end the area instead of reading past it', async () => {
    const area = Buffer.concat([susp.nm('ok'), Buffer.from('PX'), Buffer.from([200, 1])]);
    assert.equal((await parseRockRidge(area, options())).name, 'ok');
  });

  test('names and link targets beyond the limits are refused', async () => {
    const long = Buffer.concat(Array.from({ length: 10 }, () => susp.nm('x'.repeat(200), 1)));
    await assert.rejects(
      async () => parseRockRidge(long, options()),
      (e: unknown) => e instanceof IsoError && e.code === 'limit',
    );
    const link = Buffer.concat(Array.from({ length: 30 }, () => susp.sl([{ text: 'y'.repeat(200) }], 1)));
    await assert.rejects(async () => parseRockRidge(link, options()), { code: 'limit' });
  });
});
