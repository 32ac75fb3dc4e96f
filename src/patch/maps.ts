/** Text inputs for module loading: section load addresses and System.map-style symbol lists. */

/**
 * `SECTION=ADDR` lines or `SECTION ADDR` lines (as `grep . /sys/module/NAME/sections/*` or a listing of that
 * directory with values prints them: `/sys/module/xfs/sections/.text:0xffffffffc0a00000` also works).
 */
export function parseLoadMap(text: string): Map<string, bigint> {
  const m = new Map<string, bigint>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const r = /^(?:.*\/sections\/)?(\S+?)\s*[:=\s]\s*(0x[0-9a-fA-F]+|[0-9a-fA-F]{8,16})$/.exec(line);
    if (!r) throw new Error(`bad load address line '${line}' (expected SECTION=0xADDR)`);
    m.set(r[1]!, BigInt(r[2]!.startsWith('0x') ? r[2]! : '0x' + r[2]!));
  }
  return m;
}

/** System.map: `ffffffff81000000 T _text` per line. */
export function parseSymbolMap(text: string): Map<string, bigint> {
  const m = new Map<string, bigint>();
  for (const line of text.split(/\r?\n/)) {
    const r = /^([0-9a-fA-F]{8,16})\s+\S\s+(\S+)/.exec(line);
    if (r && !m.has(r[2]!)) m.set(r[2]!, BigInt('0x' + r[1]!));
  }
  return m;
}
