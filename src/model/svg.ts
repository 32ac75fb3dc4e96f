/**
 * Draws a counterexample trace as an SVG sequence diagram: one lifeline per CPU and one for the site's
 * memory; stores are arrows into memory, fetches are arrows out of it, the failing step is red.
 * Hand-written (it is small); every piece of text is escaped.
 */
import type { Result } from './explore.js';
import { cpuName } from './names.js';
import type { Model } from './types.js';

export function escapeXml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

const COL = 230;
const ROW = 46;
const TOP = 90;

export function traceSvg(model: Model, r: Result): string {
  const ncpu = model.cpus.length;
  // Lifelines: memory first, then the patcher, then the executing CPUs.
  const lanes = ['memory', ...Array.from({ length: ncpu }, (_, c) => cpuName(c))];
  const x = (lane: number) => 110 + lane * COL;
  // Wide enough for the longest label (monospace, about 6.7 px per character at this size).
  const CH = 6.7;
  const right = r.trace.map((st) => x(st.cpu + 1) + 8 + CH * (st.text.length + 12));
  const width = Math.ceil(Math.max(x(lanes.length - 1) + 260, ...right, 20 + CH * (r.message?.length ?? 0)));
  const rows = Math.max(1, r.trace.length);
  const height = TOP + rows * ROW + 70;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="monospace" font-size="11">`,
  );
  out.push(`<rect width="100%" height="100%" fill="white"/>`);
  const title = `textpoke model: ${model.protocol} on ${model.scenario} (${model.contract} fetch contract): ${r.verdict.toUpperCase()}${r.property ? ` (${r.property})` : ''}, ${r.states} states`;
  out.push(`<text x="10" y="20" font-size="13" font-weight="bold">${escapeXml(title)}</text>`);
  if (r.message) out.push(`<text x="10" y="38" fill="#b00">${escapeXml(r.message)}</text>`);
  lanes.forEach((name, i) => {
    out.push(`<rect x="${x(i) - 55}" y="${TOP - 40}" width="110" height="24" rx="4" fill="#eef" stroke="#336"/>`);
    out.push(`<text x="${x(i)}" y="${TOP - 24}" text-anchor="middle" font-weight="bold">${escapeXml(name)}</text>`);
    out.push(
      `<line x1="${x(i)}" y1="${TOP - 16}" x2="${x(i)}" y2="${height - 30}" stroke="#99a" stroke-dasharray="4 3"/>`,
    );
  });
  out.push(
    `<defs><marker id="a" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#333"/></marker></defs>`,
  );
  r.trace.forEach((st, i) => {
    const y = TOP + i * ROW + 10;
    const lane = st.cpu + 1;
    const last = i === r.trace.length - 1 && r.verdict === 'unsafe';
    const color = last ? '#c00' : '#222';
    const ctx =
      st.ctx === 'base' || st.ctx === 'protocol'
        ? ''
        : ` [${st.ctx === 'mce' ? '#MC' : st.ctx === 'nmi' ? 'NMI' : 'int3'}]`;
    out.push(`<text x="8" y="${y + 4}" fill="#777">${i + 1}.</text>`);
    if (st.kind === 'write' || (st.kind === 'handler' && /stores/.test(st.text))) {
      out.push(`<line x1="${x(lane)}" y1="${y}" x2="${x(0) + 4}" y2="${y}" stroke="${color}" marker-end="url(#a)"/>`);
      out.push(
        `<text x="${(x(lane) + x(0)) / 2}" y="${y - 4}" text-anchor="middle" fill="${color}">${escapeXml(st.text + ctx)}</text>`,
      );
      out.push(
        `<text x="${x(0) - 8}" y="${y + 14}" text-anchor="end" fill="#555">${escapeXml(`v${st.version}: ${st.memory}`)}</text>`,
      );
    } else if (st.kind === 'exec' && st.reads) {
      const reads = st.reads.map((rd) => `${rd.bytes} (v${rd.version}${rd.stale ? ', stale' : ''})`).join(' + ');
      out.push(`<line x1="${x(0)}" y1="${y}" x2="${x(lane) - 4}" y2="${y}" stroke="${color}" marker-end="url(#a)"/>`);
      out.push(
        `<text x="${(x(lane) + x(0)) / 2}" y="${y - 4}" text-anchor="middle" fill="#555">${escapeXml(`fetch +${st.offset}: ${reads}`)}</text>`,
      );
      out.push(
        `<text x="${x(lane) + 8}" y="${y + 4}" fill="${color}">${escapeXml(`${ctx ? ctx.trim() + ' ' : ''}${st.asm ?? ''} [${st.as}]`)}</text>`,
      );
    } else {
      out.push(`<circle cx="${x(lane)}" cy="${y}" r="4" fill="${color}"/>`);
      out.push(`<text x="${x(lane) + 8}" y="${y + 4}" fill="${color}">${escapeXml(st.text + ctx)}</text>`);
    }
  });
  if (r.verdict !== 'unsafe') {
    out.push(
      `<text x="10" y="${TOP + 10}" fill="#070">${escapeXml(r.verdict === 'safe' ? 'No interleaving within the bounds breaks the protocol.' : 'State limit reached.')}</text>`,
    );
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}
