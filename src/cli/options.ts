/** Command-line options several commands share, written once so their names, choices and help agree. */
import { type Command, Option } from 'commander';
import { PROFILES } from '../target/profile.js';

/** `--profile <id>`: read the inputs with this profile instead of detecting it (choices: every profile). */
export function profileOption(what = 'the files'): Option {
  return new Option('--profile <id>', `read ${what} with this profile instead of detecting it`).choices(
    PROFILES.map((p) => p.id),
  );
}

/** `--symbols <file>` and `--kaslr-offset <hex>` for a stripped kernel image (vmlinuz). */
export function addSymbolOptions(cmd: Command): Command {
  return cmd
    .option(
      '--symbols <file>',
      'symbols for a stripped kernel image (vmlinuz): a System.map, a /proc/kallsyms dump (as root) or the debug vmlinux',
    )
    .option(
      '--kaslr-offset <hex>',
      'subtracted from the --symbols addresses (default: found from _text in a kallsyms dump)',
    );
}
