/**
 * Every table reader on a hand-written object whose fields are known, both as a relocatable object
 * (values from RELA entries) and linked at a kernel address (values from the bytes, tables found
 * through start/stop symbols).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Image } from '../../src/elf/image.js';
import { detectTarget } from '../../src/target/detect.js';
import { readSites } from '../../src/sites/read.js';
import { sitesOf as ofTable } from '../../src/sites/site.js';
import type { Site } from '../../src/sites/site.js';
import type { TableId } from '../../src/target/profile.js';
import { assemble, tempDir } from '../support/build.js';

function build(): { obj: string; linked: string } {
  const obj = assemble('sites/tables61.S');
  const linked = join(tempDir(), 'tables61.elf');
  execFileSync('ld', ['-o', linked, '-e', 'func', '-Ttext=0xffffffff81000000', '--unresolved-symbols=ignore-all', obj]);
  return { obj, linked };
}

const { obj, linked } = build();

function sitesOf(path: string): { img: Image; sites: Site[]; counts: Record<string, number>; errors: string[] } {
  const img = Image.parse(readFileSync(path), path);
  const t = detectTarget(img);
  assert.equal(t.profile?.id, 'linux-6.1.38', 'vermagic 6.1.38 selects the NCAPINTS-21 profile');
  const r = readSites(img, t.profile!);
  return { img, sites: r.sites, counts: r.counts as Record<string, number>, errors: r.errors };
}

for (const [kind, path] of [
  ['relocatable', obj],
  ['linked', linked],
] as const) {
  test(`sites fixture (${kind}): every table and field`, () => {
    const { img, sites, counts, errors } = sitesOf(path);
    assert.deepEqual(errors, []);
    assert.deepEqual(counts, {
      '.altinstructions': 2,
      '.parainstructions': 1,
      '.static_call_sites': 2,
      __jump_table: 2,
      '.retpoline_sites': 1,
      '.return_sites': 1,
      '.ibt_endbr_seal': 1,
      '.smp_locks': 1,
      __mcount_loc: 1,
    });
    const func = img.symbol('func')!;
    const at = (s: Site) => s.addr - func.addr;
    const by = <T extends TableId>(t: T) => ofTable(sites, t);
    for (const s of sites) assert.equal(s.problems, undefined, `${s.table}#${s.index}: ${s.problems}`);

    const [a1, a2] = by('.altinstructions');
    assert.equal(at(a1!), 9); // endbr64 (4) + call __fentry__ (5)
    assert.equal(a1!.length, 8);
    assert.equal(a1!.feature, 4 * 32 + 23);
    assert.equal(a1!.inverted, false);
    assert.equal(a1!.repl!.length, 5);
    assert.equal(img.symbolize(a1!.repl!.addr).name, '.altinstr_replacement');
    assert.deepEqual([...img.read(a1!.repl!.addr, 5)!], [0xf3, 0x48, 0x0f, 0xb8, 0xc7]); // popcnt %rdi,%rax
    assert.equal(at(a2!), 17);
    assert.equal(a2!.feature, 3 * 32 + 21);
    assert.equal(a2!.inverted, true);
    assert.equal(a2!.length, 3);
    assert.equal(a2!.repl!.length, 0);

    const [j2, j5] = by('__jump_table');
    assert.equal(at(j2!), 20);
    assert.equal(j2!.length, 2);
    assert.equal(j2!.branchDefault, true);
    assert.equal(j2!.initNop, false);
    assert.equal(j5!.length, 5);
    assert.equal(j5!.branchDefault, false);
    assert.equal(j5!.initNop, true);
    assert.equal(j2!.target!.addr, j5!.target!.addr);
    assert.equal(j2!.target!.addr - func.addr, 55); // .Ljl_target
    assert.equal(j2!.key!.addr, img.symbolize(j2!.key!.addr).sym?.addr ?? j2!.key!.addr);

    const [sc, sct] = by('.static_call_sites');
    assert.equal(at(sc!), 27);
    assert.equal(sc!.tail, false);
    assert.equal(sct!.tail, true);
    assert.equal(sct!.init, false);
    assert.equal(sc!.length, 5);

    const [pv] = by('.parainstructions');
    assert.equal(at(pv!), 37);
    assert.equal(pv!.paraType, 5);
    assert.equal(pv!.length, 6);
    assert.equal(pv!.clobbers, 0x1ff);

    assert.equal(at(by('.retpoline_sites')[0]!), 43);
    assert.equal(by('.retpoline_sites')[0]!.length, 5);
    const lock = by('.smp_locks')[0]!;
    assert.equal(at(lock), 48);
    assert.equal(lock.length, 1);
    assert.equal(img.read(lock.addr, 1)![0], 0xf0);
    assert.equal(at(by('.return_sites')[0]!), 55);
    assert.equal(at(by('.ibt_endbr_seal')[0]!), 0);
    assert.equal(by('.ibt_endbr_seal')[0]!.length, 4);
    assert.equal(at(by('__mcount_loc')[0]!), 4);
  });
}

test('linked fixture: addresses print as kernel addresses', () => {
  const { img, sites } = sitesOf(linked);
  const e = sites.find((s) => s.table === '.ibt_endbr_seal')!;
  assert.equal(img.hex(e.addr), '0xffffffff81000000');
});
