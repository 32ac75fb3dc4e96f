/**
 * SARIF 2.1.0 (OASIS) with the same findings as text and JSON: one run, one rule per check, one result per
 * finding, the file as the artifact and `SYMBOL+0xOFF` plus the address as a logical/binary location. Built by
 * hand: the format needs a dozen fields and no SARIF builder on npm is both small and maintained.
 */
import { CHECKS } from '../checks/index.js';
import type { FileReport } from './json.js';
import { severityOf } from './text.js';

const LEVEL = { error: 'error', warning: 'warning', info: 'note' } as const;

export function sarifLog(files: readonly FileReport[], werror = false): object {
  const rules = CHECKS.map((c) => ({
    id: c.id,
    name: c.id,
    shortDescription: { text: c.describe },
    defaultConfiguration: { level: LEVEL[c.severity] },
  }));
  const ruleIndex = new Map(CHECKS.map((c, i) => [c.id, i]));
  const artifacts = files.map((f) => ({ location: { uri: toUri(f.path) } }));
  const results: object[] = [];
  const notifications: object[] = [];
  files.forEach((f, fi) => {
    for (const e of f.errors)
      notifications.push({
        level: 'error',
        message: { text: `${f.path}: ${e}` },
        locations: [{ physicalLocation: { artifactLocation: { uri: toUri(f.path), index: fi } } }],
      });
    for (const x of f.findings) {
      const where = `${x.symbol}+0x${x.offset.toString(16)}`;
      results.push({
        ruleId: x.check,
        ruleIndex: ruleIndex.get(x.check) ?? -1,
        level: LEVEL[severityOf(x, werror)],
        message: { text: x.message },
        locations: [
          {
            physicalLocation: {
              artifactLocation: { uri: toUri(f.path), index: fi },
              address: { absoluteAddress: addrNum(x.address), fullyQualifiedName: where },
            },
            logicalLocations: [{ name: x.symbol, fullyQualifiedName: where, kind: 'function' }],
          },
        ],
        relatedLocations: x.related.map((r, i) => ({
          id: i,
          message: { text: r.message },
          physicalLocation: {
            artifactLocation: { uri: toUri(f.path), index: fi },
            address: { absoluteAddress: addrNum(r.address), fullyQualifiedName: r.symbol },
          },
          logicalLocations: [{ fullyQualifiedName: r.symbol }],
        })),
        properties: { address: x.address, symbol: x.symbol, offset: x.offset },
      });
    }
  });
  return {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: { driver: { name: 'textpoke', informationUri: 'https://github.com/textpoke/textpoke', rules } },
        artifacts,
        results,
        invocations: [
          { executionSuccessful: files.every((f) => f.errors.length === 0), toolExecutionNotifications: notifications },
        ],
      },
    ],
  };
}

export function renderSarif(files: readonly FileReport[], werror = false): string {
  return JSON.stringify(sarifLog(files, werror), null, 1) + '\n';
}

/** SARIF wants a URI reference; relative paths stay relative, with characters a URI cannot hold escaped. */
function toUri(path: string): string {
  return path
    .split('/')
    .map((s) => encodeURIComponent(s))
    .join('/');
}

/**
 * SARIF addresses are integers; kernel addresses exceed 2^53, so the exact value is in properties.address
 * and absoluteAddress carries it only when it is exactly representable (otherwise -1, "unknown").
 */
function addrNum(hex: string): number {
  const v = BigInt(hex);
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : -1;
}
