import { Command, CommanderError } from 'commander';
import { EXIT_USAGE, ExitStatus, Io, processIo, UsageError } from './context.js';
import { registerCommands } from './commands.js';

/**
 * Runs the textpoke command line and resolves to the process exit code.
 * commander (a well-kept CLI parser) handles flags and help; usage errors map to exit 2.
 */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const status = new ExitStatus();
  const program = new Command();
  program
    .name('textpoke')
    .description('Find, apply and check the runtime patch sites of x86 Linux and Xen binaries')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out(s),
      writeErr: (s) => io.err(s),
    })
    .showHelpAfterError(false);
  await registerCommands(program, io, status, argv);
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help')
        return 0;
      return EXIT_USAGE;
    }
    if (e instanceof UsageError) {
      io.err(`textpoke: ${e.message}\n`);
      return EXIT_USAGE;
    }
    const msg = e instanceof Error ? e.message : String(e);
    io.err(`textpoke: internal error: ${msg}\n`);
    if (process.env.TEXTPOKE_DEBUG && e instanceof Error) io.err(`${e.stack}\n`);
    return EXIT_USAGE;
  }
  return status.code;
}
