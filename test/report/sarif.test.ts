import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { assemble, compile } from '../support/build.js';
import { corpus, repoRoot } from '../support/corpus.js';

const bin = join(repoRoot, 'bin', 'textpoke.js');
const require = createRequire(import.meta.url);
// Ajv (draft-04 flavour, as the OASIS SARIF 2.1.0 schema is written in draft-04) with its standard formats;
// both are CommonJS, loaded with require so their default exports need no interop shims.
const Ajv = require('ajv-draft-04') as typeof import('ajv-draft-04').default;
const addFormats = require('ajv-formats') as typeof import('ajv-formats').default;
// The official schema, as shipped in an npm package (never a fetched copy in the repo).
const schemaPath = join(
  require.resolve('@microsoft/jest-sarif/package.json'),
  '..',
  'lib',
  'schemas',
  'sarif-2.1.0-rtm.5.json',
);

function validator() {
  // unicodeRegExp off: the schema's `language` pattern has a stray `]` that only non-unicode regexps accept.
  const ajv = new Ajv({ allErrors: true, strict: false, unicodeRegExp: false });
  addFormats(ajv);
  return ajv.compile(JSON.parse(readFileSync(schemaPath, 'utf8')));
}

function sarif(args: string[]): { code: number; log: Record<string, any> } {
  const r = spawnSync(process.execPath, [bin, 'check', '--sarif', ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  return { code: r.status ?? -1, log: JSON.parse(r.stdout) };
}

test('SARIF validates against the 2.1.0 schema and carries the same findings as text', () => {
  const validate = validator();
  // The validator does reject what is not SARIF (a run without a tool, a result level outside the enum).
  assert.equal(validate({ version: '2.1.0', runs: [{}] }), false);
  assert.equal(
    validate({
      version: '2.1.0',
      runs: [{ tool: { driver: { name: 'x' } }, results: [{ message: { text: 'm' }, level: 'fatal' }] }],
    }),
    false,
  );
  const bug = compile('check/nospec-pred.c', ['-O2', '-DPRED_INLINE=0']);
  const bad = assemble('check/bad-sites.S');
  const { code, log } = sarif([bug, bad]);
  assert.equal(code, 1); // bad-sites has error-level findings
  assert.ok(validate(log), JSON.stringify(validate.errors?.slice(0, 5), null, 1));
  assert.equal(log.version, '2.1.0');
  const results = log.runs[0].results as any[];
  const text = spawnSync(process.execPath, [bin, 'check', bug, bad], { encoding: 'utf8' }).stdout;
  const textLines = text.split('\n').filter((l: string) => / (warning|error|info): textpoke: /.test(l));
  assert.equal(results.length, textLines.length);
  const r = results.find((x) => x.properties.symbol === 'is_hvm_domain.isra.0')!;
  assert.equal(r.ruleId, 'nospec-outlined');
  assert.equal(r.level, 'note'); // info: no guest input reaches the callers
  assert.match(r.locations[0].logicalLocations[0].fullyQualifiedName, /^is_hvm_domain\.isra\.0\+0x[0-9a-f]+$/);
  assert.ok(r.relatedLocations.some((x: any) => x.message.text.includes('branch on the result')));
  assert.ok(results.some((x) => x.ruleId === 'site-cacheline' && x.level === 'note'));
  assert.ok(results.some((x) => x.ruleId === 'site-reloc' && x.level === 'error'));
});

test('SARIF for xen-syms (addresses above 2^53 kept exactly in properties) and for an unreadable file validates', () => {
  const validate = validator();
  const { log } = sarif(['--checks', 'nospec-outlined', corpus.xenSyms]);
  assert.ok(validate(log), JSON.stringify(validate.errors?.slice(0, 5), null, 1));
  // The reported address is exactly the symbol's (from nm) plus the offset: no precision lost above 2^53.
  const r = (log.runs[0].results as any[]).find((x) => x.properties.symbol === 'p2m_mem_access_sanity_check')!;
  const nm = spawnSync('nm', [corpus.xenSyms], { encoding: 'utf8', maxBuffer: 1 << 28 }).stdout;
  const sym = BigInt('0x' + /^([0-9a-f]+) T p2m_mem_access_sanity_check$/m.exec(nm)![1]);
  const off = BigInt(
    /\+0x([0-9a-f]+)$/.exec(r.locations[0].logicalLocations[0].fullyQualifiedName)![1]!.replace(/^/, '0x'),
  );
  assert.ok(sym > 2n ** 53n);
  assert.equal(r.properties.address, '0x' + (sym + off).toString(16));
  const junk = join(repoRoot, 'package.json');
  const bad = sarif([junk]);
  assert.equal(bad.code, 1);
  assert.ok(validate(bad.log), JSON.stringify(validate.errors?.slice(0, 5), null, 1));
  assert.equal(bad.log.runs[0].invocations[0].executionSuccessful, false);
});
