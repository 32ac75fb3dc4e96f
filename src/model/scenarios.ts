/**
 * Built-in scenarios (data), and the reader for scenario files users write themselves.
 */
import { parseBytes } from './decode.js';
import { DEFAULT_FETCH_UNIT, FETCH_CONTRACTS } from './types.js';
import type {
  ApiCall,
  ApiFn,
  Caller,
  Cond,
  CpuConfig,
  HandlerOp,
  Int3Rule,
  PatcherOp,
  ProtocolDef,
  Scenario,
  SiteDef,
} from './types.js';

/** `e8 rel32` at `at` calling `target`. */
export function callTo(at: bigint, target: bigint): number[] {
  return rel32(0xe8, at, target);
}

/** `e9 rel32` at `at` jumping to `target` (a jump label's enabled state). */
export function jmpTo(at: bigint, target: bigint): number[] {
  return rel32(0xe9, at, target);
}

function rel32(opcode: number, at: bigint, target: bigint): number[] {
  const rel = Number(BigInt.asIntN(32, target - (at + 5n)));
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, rel, true);
  return [opcode, ...b];
}

/** The 5-byte NOP of a disabled jump label. */
const NOP5 = [0x0f, 0x1f, 0x44, 0x00, 0x00];

const LINUX_TEXT = 0xffffffff81000000n;
const XEN_TEXT = 0xffff82d040200000n;
/** Two functions a static call switches between; chosen so every byte of the rel32 differs. */
const FUNC_A = 0xffffffff81a3c5e0n;
const FUNC_B = 0xffffffff8254b7f0n;

const twoCpus = (nmi: number, mce: number): CpuConfig[] => [
  { passes: 1, nmi, mce },
  { passes: 1, nmi, mce },
];

function staticCall(name: string, base: bigint, description: string): Scenario {
  return {
    name,
    description,
    base,
    old: callTo(base, FUNC_A),
    new: callTo(base, FUNC_B),
    cpus: twoCpus(1, 1),
    patcher: { nmi: 0, mce: 0 },
    handlersRunSite: true,
    fetchUnit: DEFAULT_FETCH_UNIT,
  };
}

export const SCENARIOS: readonly Scenario[] = [
  staticCall(
    'static-call-retarget',
    LINUX_TEXT + 0x401n,
    'a 5-byte `call func_a` becomes `call func_b`; the site sits inside one aligned 8-byte word; 2 CPUs run it, each may take an NMI whose handler runs it too',
  ),
  staticCall(
    'static-call-retarget-crossing',
    LINUX_TEXT + 0x405n,
    'the same call straddling an 8-byte (and, at +0x3d, a cache-line) boundary: bytes 0-2 in one word, 3-4 in the next',
  ),
  {
    name: 'multi-insn-alternative',
    description:
      'two old instructions (`xor %eax,%eax; nop3`) become one `call`; a CPU may have run the xor and stand between them (seed 002); 2 CPUs, each may take an NMI and an #MC whose handlers run the site',
    base: LINUX_TEXT + 0x800n,
    old: [0x31, 0xc0, 0x0f, 0x1f, 0x00],
    new: callTo(LINUX_TEXT + 0x800n, FUNC_B),
    cpus: twoCpus(1, 1),
    patcher: { nmi: 0, mce: 0 },
    handlersRunSite: true,
    fetchUnit: DEFAULT_FETCH_UNIT,
  },
  {
    name: 'nmi-on-patcher',
    description:
      'Xen boot patching of an entry-path alternative (`nop3` -> `clac`); only the patching CPU runs; an NMI on it runs the site',
    base: XEN_TEXT + 0x1000n,
    old: [0x0f, 0x1f, 0x00],
    new: [0x0f, 0x01, 0xca],
    cpus: [],
    patcher: { nmi: 1, mce: 0 },
    handlersRunSite: true,
    fetchUnit: DEFAULT_FETCH_UNIT,
  },
  {
    name: 'mce-during-nmi-patch',
    description:
      'as nmi-on-patcher, and a machine check (not maskable) on the patching CPU whose handler runs the site',
    base: XEN_TEXT + 0x1000n,
    old: [0x0f, 0x1f, 0x00],
    new: [0x0f, 0x01, 0xca],
    cpus: [],
    patcher: { nmi: 1, mce: 1 },
    handlersRunSite: true,
    fetchUnit: DEFAULT_FETCH_UNIT,
  },
];

/**
 * Three jump labels at rising addresses, enabled through both text-poke APIs: the batched path
 * (arch_jump_label_transform_queue() -> smp_text_poke_batch_add(), later arch_jump_label_transform_apply() ->
 * smp_text_poke_batch_finish()) and jump_label_transform() -> smp_text_poke_single(), each call under
 * text_mutex, nothing ordering the two paths (the June 2025 linux-next report).
 */
function jumpLabels(name: string, description: string, batchMax: number): Scenario {
  const base = LINUX_TEXT + 0x600n;
  return {
    name,
    description,
    base,
    old: [...NOP5, ...NOP5, ...NOP5],
    // Each jump lands on the next site (the last one past the region), so a CPU runs through every site
    // whichever keys are enabled.
    new: [...jmpTo(base, base + 5n), ...jmpTo(base + 5n, base + 10n), ...jmpTo(base + 10n, base + 15n)],
    cpus: twoCpus(1, 0),
    patcher: { nmi: 0, mce: 0 },
    handlersRunSite: true,
    fetchUnit: DEFAULT_FETCH_UNIT,
    sites: [
      { name: 'key_lo', off: 0, len: 5 },
      { name: 'key_mid', off: 5, len: 5 },
      { name: 'key_hi', off: 10, len: 5 },
    ],
    callers: [
      {
        name: 'jump_label batch',
        calls: [
          { fn: 'smp_text_poke_batch_add', site: 'key_mid' },
          { fn: 'smp_text_poke_batch_add', site: 'key_hi' },
          { fn: 'smp_text_poke_batch_finish' },
        ],
      },
      { name: 'jump_label_transform', calls: [{ fn: 'smp_text_poke_single', site: 'key_lo' }] },
    ],
    batchMax,
  };
}

/** Scenarios with several patch sites and patching callers: for the batch protocols (smp-text-poke-batch*). */
export const BATCH_SCENARIOS: readonly Scenario[] = [
  jumpLabels(
    'jump-label-mixed-api',
    'three jump labels (nop5 -> jmp) at rising addresses key_lo, key_mid, key_hi; one caller batches key_mid and key_hi (smp_text_poke_batch_add x2, then _finish), another enables key_lo with smp_text_poke_single between any two of those calls; 2 CPUs run the sites, each may take an NMI whose handler runs them too',
    4,
  ),
  jumpLabels(
    'jump-label-mixed-api-full',
    'as jump-label-mixed-api with a two-entry text_poke_array (TEXT_POKE_ARRAY_MAX scaled down to 2): key_mid and key_hi fill it',
    2,
  ),
];

export function findScenario(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name) ?? BATCH_SCENARIOS.find((s) => s.name === name);
}

// ---------------------------------------------------------------------------------------------------
// Scenario files (JSON). See the README (textpoke model, scenario files) for the format.

type Json = unknown;

function isObj(v: Json): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function int(v: Json, what: string, min = 0, max = 64): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw new Error(`${what}: expected an integer ${min}..${max}`);
  return v;
}

function byteVal(v: Json, what: string): number {
  const b = typeof v === 'string' ? parseBytes(v, what) : [int(v, what, 0, 255)];
  if (b.length !== 1) throw new Error(`${what}: expected one byte`);
  return b[0]!;
}

/** Parses a scenario file's text. Throws an Error with a one-line message on bad input. */
export function parseScenarioFile(text: string, fileName: string): Scenario {
  let j: Json;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new Error(`${fileName}: not JSON: ${(e as Error).message}`);
  }
  try {
    return scenarioFromJson(j, fileName);
  } catch (e) {
    throw new Error(`${fileName}: ${(e as Error).message}`);
  }
}

export function scenarioFromJson(j: Json, fallbackName: string): Scenario {
  if (!isObj(j)) throw new Error('expected a JSON object');
  const known = new Set([
    'name',
    'description',
    'base',
    'old',
    'new',
    'cpus',
    'passes',
    'nmi',
    'mce',
    'patcher',
    'handlersRunSite',
    'fetchUnit',
    'contract',
    'protocol',
    'sites',
    'callers',
    'batchMax',
  ]);
  for (const k of Object.keys(j)) if (!known.has(k)) throw new Error(`unknown key "${k}"`);
  const old = parseBytes(j.old, 'old');
  const nu = parseBytes(j.new, 'new');
  if (old.length !== nu.length)
    throw new Error(
      `old (${old.length} bytes) and new (${nu.length} bytes) differ in length: pad the shorter with NOPs`,
    );
  if (old.length < 1 || old.length > 15) throw new Error('the site must be 1..15 bytes');
  let base: bigint;
  try {
    base = BigInt(typeof j.base === 'number' ? j.base : String(j.base ?? '0xffffffff81000000'));
  } catch {
    throw new Error(`base: "${String(j.base)}" is not an address`);
  }
  let cpus: CpuConfig[];
  if (Array.isArray(j.cpus)) {
    cpus = j.cpus.map((c, i) => {
      if (!isObj(c)) throw new Error(`cpus[${i}]: expected an object`);
      return {
        passes: int(c.passes ?? 1, `cpus[${i}].passes`, 0, 4),
        nmi: int(c.nmi ?? 0, `cpus[${i}].nmi`, 0, 2),
        mce: int(c.mce ?? 0, `cpus[${i}].mce`, 0, 2),
      };
    });
  } else {
    const n = int(j.cpus ?? 2, 'cpus', 0, 4);
    const c = {
      passes: int(j.passes ?? 1, 'passes', 0, 4),
      nmi: int(j.nmi ?? 0, 'nmi', 0, 2),
      mce: int(j.mce ?? 0, 'mce', 0, 2),
    };
    cpus = Array.from({ length: n }, () => ({ ...c }));
  }
  const p = j.patcher ?? {};
  if (!isObj(p)) throw new Error('patcher: expected an object');
  if (j.fetchUnit !== undefined && j.contract !== undefined)
    throw new Error('give either "contract" or "fetchUnit", not both');
  if (j.contract !== undefined && !Object.hasOwn(FETCH_CONTRACTS, String(j.contract))) {
    throw new Error(`contract: expected ${Object.keys(FETCH_CONTRACTS).join(' or ')}`);
  }
  const fetchUnit =
    j.contract !== undefined
      ? FETCH_CONTRACTS[j.contract as keyof typeof FETCH_CONTRACTS]
      : int(j.fetchUnit ?? DEFAULT_FETCH_UNIT, 'fetchUnit', 1, 64);
  if ((fetchUnit & (fetchUnit - 1)) !== 0) throw new Error('fetchUnit: must be a power of two');
  const s: Scenario = {
    name: typeof j.name === 'string' ? j.name : fallbackName,
    description: typeof j.description === 'string' ? j.description : '',
    base,
    old,
    new: nu,
    cpus,
    patcher: { nmi: int(p.nmi ?? 0, 'patcher.nmi', 0, 2), mce: int(p.mce ?? 0, 'patcher.mce', 0, 2) },
    handlersRunSite: j.handlersRunSite === undefined ? true : Boolean(j.handlersRunSite),
    fetchUnit,
  };
  if (j.protocol !== undefined) s.protocol = protocolFromJson(j.protocol, nu);
  if (j.sites !== undefined) s.sites = sitesFromJson(j.sites, old.length);
  if (j.callers !== undefined)
    s.callers = callersFromJson(
      j.callers,
      (s.sites ?? [{ name: 'site' }]).map((d) => d.name),
    );
  if (j.batchMax !== undefined) s.batchMax = int(j.batchMax, 'batchMax', 1, 8);
  return s;
}

/** `{"name": offset, ...}`: each site runs to the next one (or the end of the region). */
function sitesFromJson(j: Json, len: number): SiteDef[] {
  if (!isObj(j) || !Object.keys(j).length) throw new Error('sites: expected {"name": offset, ...}');
  const sites = Object.entries(j)
    .map(([name, off]) => ({ name, off: int(off, `sites.${name}`, 0, len - 1), len: 0 }))
    .sort((a, b) => a.off - b.off);
  if (sites[0]!.off !== 0) throw new Error('sites: the first site must start at offset 0');
  sites.forEach((d, i) => {
    const end = sites[i + 1]?.off ?? len;
    if (end === d.off) throw new Error(`sites: ${d.name} and ${sites[i + 1]!.name} start at the same offset`);
    d.len = end - d.off;
  });
  return sites;
}

/** The API by its current name, or the name it had before Linux 6.16. */
const API_NAMES: Record<string, ApiFn> = {
  smp_text_poke_batch_add: 'smp_text_poke_batch_add',
  text_poke_queue: 'smp_text_poke_batch_add',
  smp_text_poke_batch_finish: 'smp_text_poke_batch_finish',
  text_poke_finish: 'smp_text_poke_batch_finish',
  smp_text_poke_single: 'smp_text_poke_single',
  text_poke_bp: 'smp_text_poke_single',
};

/** `[{"name": "...", "calls": ["smp_text_poke_batch_add key_hi", "smp_text_poke_batch_finish"]}, ...]`. */
function callersFromJson(j: Json, siteNames: string[]): Caller[] {
  if (!Array.isArray(j) || !j.length || j.length > 4)
    throw new Error('callers: expected a list of 1..4 {"name", "calls"}');
  return j.map((c, i) => {
    const what = `callers[${i}]`;
    if (!isObj(c) || !Array.isArray(c.calls) || !c.calls.length || c.calls.length > 4)
      throw new Error(`${what}: expected {"name": ..., "calls": [1..4 calls]}`);
    const calls = c.calls.map((x, k): ApiCall => {
      const [fnName, site, extra] = typeof x === 'string' ? x.trim().split(/\s+/) : [];
      const fn = API_NAMES[fnName ?? ''];
      if (!fn || extra !== undefined)
        throw new Error(
          `${what}.calls[${k}]: expected "<function> [site]" with function one of ${Object.keys(API_NAMES).join(', ')}`,
        );
      if (fn === 'smp_text_poke_batch_finish') {
        if (site !== undefined) throw new Error(`${what}.calls[${k}]: ${fnName} takes no site`);
        return { fn };
      }
      if (!siteNames.includes(site ?? ''))
        throw new Error(`${what}.calls[${k}]: unknown site "${site ?? ''}" (sites: ${siteNames.join(', ')})`);
      return { fn, site: site! };
    });
    return { name: typeof c.name === 'string' ? c.name : `caller${i + 1}`, calls };
  });
}

function protocolFromJson(j: Json, nu: number[]): ProtocolDef {
  if (!isObj(j)) throw new Error('protocol: expected an object');
  const vars = Array.isArray(j.vars) ? j.vars.map(String) : ['active'];
  const varIdx = (name: Json, what: string): number => {
    const i = vars.indexOf(String(name));
    if (i < 0) throw new Error(`${what}: unknown variable "${String(name)}" (declare it in "vars")`);
    return i;
  };
  const writes = (v: Json, what: string): Array<[number, number]> => {
    if (Array.isArray(v))
      return v.map((pair, i) => {
        if (!Array.isArray(pair) || pair.length !== 2) throw new Error(`${what}[${i}]: expected [offset, byte]`);
        return [int(pair[0], `${what}[${i}] offset`, 0, 15), byteVal(pair[1], `${what}[${i}] byte`)] as [
          number,
          number,
        ];
      });
    if (isObj(v))
      return Object.entries(v).map(
        ([k, b]) => [int(Number(k), `${what} offset`, 0, 15), byteVal(b, `${what} byte`)] as [number, number],
      );
    throw new Error(`${what}: expected [[offset, byte], ...] or {"offset": byte}`);
  };
  const cond = (v: Json, what: string): Cond => {
    if (v === 'patcherDone') return { kind: 'patcherDone' };
    if (isObj(v) && Array.isArray(v.memNe) && v.memNe.length === 2)
      return { kind: 'memNe', off: int(v.memNe[0], `${what}.memNe`, 0, 15), val: byteVal(v.memNe[1], `${what}.memNe`) };
    if (isObj(v) && Array.isArray(v.var) && v.var.length === 2)
      return { kind: 'varEq', v: varIdx(v.var[0], what), val: int(v.var[1], what, 0, 255) };
    throw new Error(`${what}: expected "patcherDone", {"memNe": [off, byte]} or {"var": [name, value]}`);
  };
  const newAt = (v: Json, what: string): number[] => {
    if (!Array.isArray(v)) throw new Error(`${what}: expected a list of offsets`);
    return v.map((o) => {
      const n = int(o, what, 0, 15);
      if (n >= nu.length) throw new Error(`${what}: offset ${n} is outside the site`);
      return n;
    });
  };
  const op = (o: Json, i: number): PatcherOp => {
    const what = `protocol.ops[${i}]`;
    if (o === 'sync') return { kind: 'sync' };
    if (!isObj(o)) throw new Error(`${what}: expected "sync" or an object`);
    if ('write' in o) return { kind: 'write', bytes: writes(o.write, `${what}.write`) };
    if ('new' in o)
      return { kind: 'write', bytes: newAt(o.new, `${what}.new`).map((x) => [x, nu[x]!] as [number, number]) };
    if ('set' in o && Array.isArray(o.set) && o.set.length === 2)
      return { kind: 'set', v: varIdx(o.set[0], what), val: int(o.set[1], what, 0, 255) };
    if ('wait' in o) return { kind: 'wait', cond: cond(o.wait, `${what}.wait`) };
    throw new Error(`${what}: expected one of write, new, set, wait, "sync"`);
  };
  if (!Array.isArray(j.ops)) throw new Error('protocol.ops: expected a list of steps');
  const ops = j.ops.map(op);
  const hop = (o: Json, what: string): HandlerOp => {
    if (o === 'emulate-new') return { kind: 'emulate', version: 'new' };
    if (o === 'emulate-old') return { kind: 'emulate', version: 'old' };
    if (o === 'emulate-call') return { kind: 'emulate', version: 'new', onlyCalls: true };
    if (o === 'retry') return { kind: 'retry' };
    if (o === 'serialize') return { kind: 'serialize' };
    if (isObj(o) && 'resume' in o) return { kind: 'resume', delta: int(o.resume, `${what}.resume`, 0, 15) };
    if (isObj(o) && 'write' in o) return { kind: 'write', bytes: writes(o.write, `${what}.write`) };
    if (isObj(o) && 'new' in o)
      return { kind: 'write', bytes: newAt(o.new, `${what}.new`).map((x) => [x, nu[x]!] as [number, number]) };
    if (isObj(o) && 'wait' in o) return { kind: 'wait', cond: cond(o.wait, `${what}.wait`) };
    throw new Error(
      `${what}: expected emulate-new, emulate-old, emulate-call, retry, serialize, {"resume": n}, {"write": ...}, {"new": [...]}, {"wait": ...}`,
    );
  };
  const rules: Int3Rule[] = (Array.isArray(j.int3) ? j.int3 : []).map((r: Json, i: number) => {
    const what = `protocol.int3[${i}]`;
    if (!isObj(r)) throw new Error(`${what}: expected an object`);
    const at = r.at ?? 'first';
    if (!(at === 'first' || at === 'interior' || at === 'any' || typeof at === 'number'))
      throw new Error(`${what}.at: expected first, interior, any or an offset`);
    const cpu = r.cpu ?? 'any';
    if (!(cpu === 'any' || cpu === 'patcher' || cpu === 'other'))
      throw new Error(`${what}.cpu: expected any, patcher or other`);
    if (!Array.isArray(r.do) || r.do.length === 0)
      throw new Error(`${what}.do: expected a non-empty list of handler steps`);
    const program = r.do.map((x, k) => hop(x, `${what}.do[${k}]`));
    const last = program[program.length - 1]!;
    if (!(last.kind === 'emulate' || last.kind === 'retry' || last.kind === 'resume'))
      throw new Error(`${what}.do: the last step must return (emulate-*, retry or resume)`);
    if (program.slice(0, -1).some((x) => x.kind === 'emulate' || x.kind === 'retry' || x.kind === 'resume'))
      throw new Error(`${what}.do: only the last step may return`);
    const rule: Int3Rule = { at: at as Int3Rule['at'], cpu, program };
    if (Array.isArray(r.when) && r.when.length === 2)
      rule.when = { v: varIdx(r.when[0], `${what}.when`), val: int(r.when[1], `${what}.when`, 0, 255) };
    return rule;
  });
  const def: ProtocolDef = {
    name: typeof j.name === 'string' ? j.name : 'custom',
    inNmi: Boolean(j.inNmi),
    vars,
    ops,
    int3: rules,
  };
  return def;
}
