/**
 * Turns a (protocol, scenario) pair into a {@link Model}: decoded instruction boundaries, fetch units,
 * CPUs, and the protocol's steps and handlers as plain data.
 */
import { RegionDecoder } from './decode.js';
import { contractName } from './types.js';
import type { CpuConfig, Model, Protocol, ProtocolPlan, Scenario, SiteInfo } from './types.js';

export const FILLER = 0x90;

export function siteInfo(
  s: Pick<Scenario, 'base' | 'old' | 'new' | 'fetchUnit' | 'sites' | 'callers' | 'batchMax'>,
): SiteInfo {
  const dec = new RegionDecoder(s.base);
  try {
    const oldI = dec.split(s.old, FILLER);
    const newI = dec.split(s.new, FILLER);
    const len = s.old.length;
    const words: Array<[number, number]> = [];
    const first = Number(((s.base % 8n) + 8n) % 8n);
    for (let o = 0; o < len; ) {
      const e = Math.min(len, o + (8 - ((first + o) % 8)));
      words.push([o, e]);
      o = e;
    }
    return {
      base: s.base,
      old: s.old,
      new: s.new,
      len,
      oldBounds: oldI.map((i) => i.off),
      newBounds: newI.map((i) => i.off),
      changed: s.old.map((_, i) => i).filter((i) => s.old[i] !== s.new[i]),
      fetchUnit: s.fetchUnit,
      newFirstIsCall: newI[0]!.isCall,
      words,
      sites: s.sites ?? [{ name: 'site', off: 0, len }],
      ...(s.callers ? { callers: s.callers } : {}),
      ...(s.batchMax !== undefined ? { batchMax: s.batchMax } : {}),
    };
  } finally {
    dec.free();
  }
}

/** Compiles a protocol (built in, or defined in a scenario file) against a scenario. */
export function compile(protocol: Protocol | undefined, scenario: Scenario): Model {
  if (scenario.old.length !== scenario.new.length) throw new Error('old and new must have the same length');
  const site = siteInfo(scenario);
  for (const d of site.sites) {
    if (!site.oldBounds.includes(d.off) || !site.newBounds.includes(d.off))
      throw new Error(
        `site ${d.name} (+${d.off}) does not start on an instruction boundary of both the old and the new code`,
      );
  }
  if (protocol && !protocol.multiSite && site.sites.length > 1) {
    throw new Error(
      `protocol ${protocol.name} patches one site and scenario ${scenario.name} has ${site.sites.length}: use a batch protocol (smp-text-poke-batch)`,
    );
  }
  let plan: ProtocolPlan;
  let pname: string;
  if (protocol) {
    plan = protocol.plan(site);
    pname = protocol.name;
  } else if (scenario.protocol) {
    const d = scenario.protocol;
    plan = { inNmi: Boolean(d.inNmi), vars: d.vars ?? [], ops: d.ops, int3: d.int3 ?? [], accept: d.accept ?? [] };
    pname = d.name ?? 'custom';
  } else {
    throw new Error(`scenario ${scenario.name} defines no protocol: pass --protocol`);
  }
  const region = plan.region ?? { base: scenario.base, old: scenario.old, new: scenario.new };
  const dec = new RegionDecoder(region.base);
  let oldI, newI;
  try {
    oldI = dec.split(region.old, FILLER);
    newI = dec.split(region.new, FILLER);
  } finally {
    dec.free();
  }
  const len = region.old.length;
  for (const op of plan.ops) {
    if (op.kind === 'write')
      for (const [o] of op.bytes)
        if (o < 0 || o >= len) throw new Error(`protocol writes offset ${o} outside the ${len}-byte site`);
    if (op.kind === 'set' || (op.kind === 'wait' && op.cond.kind === 'varEq')) {
      const v = op.kind === 'set' ? op.v : (op.cond as { v: number }).v;
      if (v >= plan.vars.length) throw new Error('protocol uses an undeclared variable');
    }
  }
  const unit = scenario.fetchUnit;
  const chunks: Array<[number, number]> = [];
  const chunkOf: number[] = [];
  const first = Number(((region.base % BigInt(unit)) + BigInt(unit)) % BigInt(unit));
  for (let o = 0; o < len; ) {
    const e = Math.min(len, o + (unit - ((first + o) % unit)));
    for (let k = o; k < e; k++) chunkOf.push(chunks.length);
    chunks.push([o, e]);
    o = e;
  }
  const cpus: CpuConfig[] = [
    { passes: 0, nmi: scenario.patcher.nmi, mce: scenario.patcher.mce },
    ...scenario.cpus.map((c) => ({ ...c })),
  ];
  if (cpus.length > 8) throw new Error('at most 7 executing CPUs');
  const hasNmi = cpus.some((c) => c.nmi > 0);
  const hasMce = cpus.some((c) => c.mce > 0);
  // base [+int3] [+NMI [+int3]] [+#MC [+int3]]
  const maxDepth = 2 + (hasNmi ? 2 : 0) + (hasMce ? 2 : 0);
  return {
    protocol: pname,
    scenario: scenario.name,
    base: region.base,
    len,
    old: region.old,
    new: region.new,
    oldInsns: new Map(oldI.map((i) => [i.off, i])),
    newInsns: new Map(newI.map((i) => [i.off, i])),
    fetchUnit: unit,
    contract: contractName(unit),
    chunks,
    chunkOf,
    cpus,
    handlersRunSite: scenario.handlersRunSite,
    inNmi: plan.inNmi,
    vars: plan.vars,
    ops: plan.ops,
    int3: plan.int3,
    accept: plan.accept,
    maxDepth,
    filler: FILLER,
  };
}
