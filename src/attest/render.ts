/** Text, JSON and SARIF for `textpoke attest` (one object per compared kernel object, one entry per differing run). */
import { hexBytes } from '../x86/format.js';
import type { DiffClass, DiffRun, ObjectResult } from './compare.js';

export interface AttestHeader {
  vmlinuz: string;
  modules: string;
  kcore: string;
  cpu: string;
  notes: string[];
}

const CLASSES: DiffClass[] = ['jump-label', 'static-call', 'ftrace', 'smp-lock', 'runtime-const', 'unexplained'];

function counts(runs: readonly DiffRun[]): Record<DiffClass, number> {
  const c = Object.fromEntries(CLASSES.map((k) => [k, 0])) as Record<DiffClass, number>;
  for (const r of runs) c[r.class]++;
  return c;
}

const hex = (a: bigint): string => '0x' + a.toString(16);

export function renderAttestText(h: AttestHeader, results: readonly ObjectResult[]): string {
  const out: string[] = [];
  out.push(`attest: ${h.vmlinuz}, modules ${h.modules}, live text from ${h.kcore}, --cpu ${h.cpu}`);
  for (const n of h.notes) out.push(`  note: ${n}`);
  let unexplained = 0;
  const total = counts(results.flatMap((r) => r.runs));
  for (const r of results) {
    const c = counts(r.runs);
    const bytes = r.sections.reduce((a, s) => a + s.compared, 0);
    const differing = r.sections.reduce((a, s) => a + s.differing, 0);
    const expl = CLASSES.filter((k) => k !== 'unexplained' && c[k])
      .map((k) => `${k} ${c[k]}`)
      .join(', ');
    out.push(
      `${r.object.padEnd(20)} ${String(bytes).padStart(10)} bytes compared, ${differing} differ: ${r.runs.length - c.unexplained} sites explained${expl ? ` (${expl})` : ''}, ${c.unexplained} unexplained`,
    );
    for (const x of r.runs) {
      if (x.class !== 'unexplained') continue;
      unexplained++;
      out.push(
        `UNEXPLAINED ${x.object}: ${x.where} (${hex(x.addr)}, ${x.section}), ${x.predicted.length} bytes: ${x.explanation}`,
      );
      out.push(`    predicted: ${hexBytes(x.predicted)}`);
      for (const l of x.predictedAsm) out.push(`               ${l}`);
      out.push(`    live:      ${hexBytes(x.live)}`);
      for (const l of x.liveAsm) out.push(`               ${l}`);
    }
  }
  out.push(
    `\n${results.length} objects; explained: ${CLASSES.filter((k) => k !== 'unexplained')
      .map((k) => `${k} ${total[k]}`)
      .join(', ')}; unexplained: ${unexplained}`,
  );
  return out.join('\n') + '\n';
}

function runJson(x: DiffRun): object {
  return {
    object: x.object,
    section: x.section,
    address: hex(x.addr),
    where: x.where,
    class: x.class,
    explanation: x.explanation,
    predicted: hexBytes(x.predicted),
    live: hexBytes(x.live),
    predictedAsm: x.predictedAsm,
    liveAsm: x.liveAsm,
  };
}

export function renderAttestJson(h: AttestHeader, results: readonly ObjectResult[]): string {
  const all = results.flatMap((r) => r.runs);
  return (
    JSON.stringify(
      {
        ...h,
        counts: counts(all),
        objects: results.map((r) => ({
          object: r.object,
          path: r.path,
          errors: r.errors,
          counts: counts(r.runs),
          sections: r.sections.map((s) => ({
            name: s.name,
            address: hex(s.addr),
            size: s.size,
            compared: s.compared,
            differing: s.differing,
          })),
          runs: r.runs.map(runJson),
        })),
      },
      null,
      2,
    ) + '\n'
  );
}

export function renderAttestSarif(h: AttestHeader, results: readonly ObjectResult[]): string {
  const rules = [
    {
      id: 'attest-unexplained',
      name: 'attest-unexplained',
      shortDescription: { text: 'live kernel text differs from the prediction and no runtime patch site explains it' },
      defaultConfiguration: { level: 'error' },
    },
  ];
  const res: object[] = [];
  for (const r of results)
    for (const x of r.runs) {
      if (x.class !== 'unexplained') continue;
      res.push({
        ruleId: 'attest-unexplained',
        ruleIndex: 0,
        level: 'error',
        message: {
          text: `${x.object}: ${x.where}: ${x.explanation}: predicted ${hexBytes(x.predicted)} (${x.predictedAsm.join('; ')}), live ${hexBytes(x.live)} (${x.liveAsm.join('; ')})`,
        },
        locations: [
          {
            physicalLocation: {
              artifactLocation: { uri: r.path || x.object },
              address: { absoluteAddress: Number(x.addr & 0xffffffffffffn), fullyQualifiedName: x.where },
            },
            logicalLocations: [
              {
                name: x.where.replace(/\+0x[0-9a-f]+$/, ''),
                fullyQualifiedName: `${x.object}:${x.where}`,
                kind: 'function',
              },
            ],
          },
        ],
        properties: runJson(x),
      });
    }
  const notifications = results.flatMap((r) => r.errors.map((e) => ({ level: 'error', message: { text: e } })));
  return (
    JSON.stringify(
      {
        $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
        version: '2.1.0',
        runs: [
          {
            tool: {
              driver: { name: 'textpoke attest', informationUri: 'https://github.com/textpoke/textpoke', rules },
            },
            invocations: [
              { executionSuccessful: notifications.length === 0, toolExecutionNotifications: notifications },
            ],
            results: res,
            properties: { ...h, counts: counts(results.flatMap((r) => r.runs)) },
          },
        ],
      },
      null,
      2,
    ) + '\n'
  );
}
