#!/usr/bin/env node
/**
 * Sweeps a module tree with every CPU preset through the library (one process): counts patches, findings
 * by kind and verifyView problems. Usage: node scripts/apply-sweep.mjs [DIR] [PRESETS]
 * (default DIR: the Debian 6.1 corpus modules; PRESETS: intel-server,amd-server,old,all,none).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { expandPaths } from '../dist/src/cli/files.js';
import {
  applyPatches,
  detectTarget,
  featureTable,
  imageFromBytes,
  parseCpu,
  readSites,
  summarize,
  verifyView,
} from 'textpoke';

const modBase = '.cache/corpus/linux-6.1/lib/modules';
const dir = process.argv[2] ?? `${modBase}/${readdirSync(modBase).find((d) => d.startsWith('6.1.0-'))}/kernel`;
const presets = (process.argv[3] ?? 'intel-server,amd-server,old,all,none').split(',');
const files = expandPaths([dir]);
const per = Object.fromEntries(
  presets.map((p) => [p, { sites: {}, bytes: {}, findings: {}, problems: 0, crashes: 0 }]),
);
let opened = 0;
for (const f of files) {
  let img;
  try {
    img = await imageFromBytes(readFileSync(f), f);
    opened++;
  } catch (e) {
    console.error(`${f}: ${e.message}`);
    continue;
  }
  const t = detectTarget(img);
  if (!t.profile) {
    console.error(`${f}: ${t.note}`);
    continue;
  }
  const sites = readSites(img, t.profile, { decode: false }).sites;
  for (const p of presets) {
    const r = per[p];
    try {
      const res = applyPatches(img, t.profile, parseCpu(p, featureTable(t.profile.features)), { sites });
      for (const s of summarize(res.view)) {
        r.sites[s.patcher] = (r.sites[s.patcher] ?? 0) + s.sites;
        r.bytes[s.patcher] = (r.bytes[s.patcher] ?? 0) + s.bytesChanged;
      }
      for (const fd of res.view.findings) r.findings[fd.kind] = (r.findings[fd.kind] ?? 0) + 1;
      const probs = verifyView(res.view);
      r.problems += probs.length;
      for (const c of probs.slice(0, 3)) console.error(`${p} ${f}: ${img.where(c.addr)}: ${c.problem}`);
    } catch (e) {
      r.crashes++;
      console.error(`${p} ${f}: CRASH ${e.stack}`);
    }
  }
}
console.log(`${opened} files under ${dir}`);
for (const p of presets) {
  const r = per[p];
  console.log(
    `\n${p}: crashes ${r.crashes}, verifyView problems ${r.problems}, findings ${JSON.stringify(r.findings)}`,
  );
  for (const k of Object.keys(r.sites).sort())
    console.log(
      `  ${k.padEnd(14)} ${String(r.sites[k]).padStart(8)} sites ${String(r.bytes[k]).padStart(9)} bytes changed`,
    );
}
