import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { EXIT_FINDINGS, EXIT_USAGE, type ExitStatus, type Io } from './context.js';
import { expandPaths } from './files.js';
import { describeError, openImage } from './jobs.js';
import { disassemblies, hex, verifyText } from '../patchlets/verify.js';
import { extractPatchlets, patchletsToC, relocTypeName } from '../patchlets/extract.js';
import type { Bits } from '../patchlets/asmtext.js';
import { disassemble } from '../x86/format.js';

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(
      code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : `cannot read (${code ?? String(e)})`,
    );
  }
}

/** Writes atomically: temp file in the same directory, then rename. */
export function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

export function register(program: Command, io: Io, status: ExitStatus): void {
  const cmd = program
    .command('patchlets')
    .description('check hand-written patch byte tables against their assembly; extract patchlets from objects');

  cmd
    .command('verify')
    .description(
      'decode each annotated byte-table initialiser ({ 0x9c, 0x58 }, // pushf; pop %[re]ax) and compare it with its comment',
    )
    .argument('<file...>', 'C sources or headers')
    .option('--32', 'decode tables outside CONFIG_X86_64/CONFIG_X86_32 conditionals as 32-bit code')
    .option('-v, --verbose', 'list matching entries too')
    .option('--json', 'JSON output')
    .action((files: string[], o: { 32?: boolean; verbose?: boolean; json?: boolean }) => {
      const bits: Bits = o[32] ? 32 : 64;
      const json: unknown[] = [];
      for (const path of files) {
        let text: string;
        try {
          text = readText(path);
        } catch (e) {
          io.err(`${path}: ${(e as Error).message}\n`);
          status.raise(EXIT_USAGE);
          continue;
        }
        const r = verifyText(text, bits);
        const bad = r.entries.filter((e) => !e.ok);
        if (o.json) {
          json.push({
            path,
            entries: r.entries.map((e) => ({
              name: e.entry.name,
              line: e.entry.line,
              bits: e.entry.bits,
              bytes: hex(e.entry.bytes),
              comment: e.entry.asm,
              ok: e.ok,
              ...disassemblies(e),
              ...(e.ok ? {} : { kind: e.kind, message: e.message }),
            })),
            unannotated: r.unannotated.map((e) => ({ name: e.name, line: e.line })),
          });
        } else {
          for (const e of r.entries) {
            const d = disassemblies(e);
            if (!e.ok) {
              io.out(`${path}:${e.entry.line}: warning: textpoke: ${e.entry.name}: ${e.message} [patchlet-mismatch]\n`);
              io.out(
                `    comment: ${e.entry.asm}\n    bytes:   ${hex(e.entry.bytes)} (${e.entry.bits}-bit${e.entry.modeFrom === 'default' ? '' : `, ${e.entry.modeFrom}`})\n    AT&T:    ${d.att}\n    Intel:   ${d.intel}\n`,
              );
            } else if (o.verbose)
              io.out(`${path}:${e.entry.line}: ${e.entry.name}: ok (${e.entry.bits}-bit): ${d.att}\n`);
          }
          io.out(
            `${path}: ${r.entries.length} annotated entr${r.entries.length === 1 ? 'y' : 'ies'}, ${r.entries.length - bad.length} match, ${bad.length} mismatch${r.unannotated.length ? `; ${r.unannotated.length} byte tables without an assembly comment not checked` : ''}\n`,
          );
        }
        if (bad.length) status.raise(EXIT_FINDINGS);
      }
      if (o.json) io.out(JSON.stringify({ files: json }, null, 1) + '\n');
    });

  cmd
    .command('extract')
    .description(
      'list the patchlets of an object assembled from a .S file (NAME/NAME_end labels or sized symbols): bytes, disassembly, and why one cannot be copied',
    )
    .argument('<obj...>', 'object files (or directories to search)')
    .option('--32', 'decode as 32-bit code')
    .option('--c', 'emit a C table (bytes and lengths) of the patchlets that can be copied')
    .option('-o, --output <file>', 'write the --c table to this file (atomically) instead of stdout')
    .action(async (objs: string[], o: { 32?: boolean; c?: boolean; output?: string }) => {
      const bits: Bits = o[32] ? 32 : 64;
      let cText = '';
      for (const path of expandPaths(objs)) {
        try {
          const img = await openImage(path);
          const ps = extractPatchlets(img, bits);
          if (ps.length === 0)
            io.err(`${path}: no patchlets (no NAME/NAME_end label pairs or sized symbols in executable sections)\n`);
          for (const p of ps) {
            if (p.problems.length) status.raise(EXIT_FINDINGS);
            if (o.c) {
              for (const pr of p.problems)
                io.err(`${path}: warning: textpoke: ${p.name}: ${pr} [patchlet-not-copyable]\n`);
              continue;
            }
            io.out(
              `${p.name}  ${p.section}+0x${(p.addr - (img.section(p.section)?.addr ?? 0)).toString(16)}  len ${p.bytes.length}  (${p.bounds})\n`,
            );
            io.out(`  bytes: ${hex(Array.from(p.bytes))}\n`);
            const sec = img.section(p.section)!;
            // Shown through the shared formatter so relocated operands read as their symbols.
            const shown =
              bits === 64
                ? disassemble(p.bytes, p.addr, {
                    img,
                    relocs: { bySecOff: img.relocs(sec).byOffset(), secAddr: sec.addr },
                  })
                : undefined;
            for (const [k, i] of p.insns.entries())
              io.out(`  +${String(i.offset).padEnd(3)} ${hex(i.bytes).padEnd(24)} ${shown?.[k]?.text ?? i.att}\n`);
            for (const r of p.relocations)
              io.out(
                `  reloc +${r.offset}: ${relocTypeName(r.type)} ${r.symbol}${r.addend ? (r.addend < 0 ? r.addend : '+' + r.addend) : ''}\n`,
              );
            for (const pr of p.problems)
              io.out(`${path}: warning: textpoke: ${p.name}: ${pr} [patchlet-not-copyable]\n`);
          }
          if (o.c) cText += patchletsToC(ps, path);
        } catch (e) {
          // A file that cannot be used is a finding, as in sites: named, the others still extracted.
          io.err(`${path}: ${describeError(e)}\n`);
          status.raise(EXIT_FINDINGS);
        }
      }
      if (o.c) {
        if (o.output) writeAtomic(o.output, cText);
        else io.out(cText);
      }
    });
}
