/**
 * Shared plumbing for the command-line front end: exit codes, usage errors,
 * and the output streams every command writes to.
 */
export const EXIT_OK = 0;
export const EXIT_FINDINGS = 1;
export const EXIT_USAGE = 2;

/** An error the user caused (bad flag, unreadable file): printed as one line, exit 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** true when stdout is a terminal (progress bars, colour). */
  isTTY: boolean;
}

export const processIo: Io = {
  out: (t) => {
    process.stdout.write(t);
  },
  err: (t) => {
    process.stderr.write(t);
  },
  isTTY: Boolean(process.stdout.isTTY) && Boolean(process.stderr.isTTY),
};

/**
 * A file's problems as one stderr line, `PATH: first; second`: at most one error line per file whatever went
 * wrong in it (messages that already start with `PATH: ` are not prefixed twice).
 */
export function fileErrorLine(path: string, messages: readonly string[]): string {
  const prefix = `${path}: `;
  return `${prefix}${messages.map((m) => (m.startsWith(prefix) ? m.slice(prefix.length) : m)).join('; ')}\n`;
}

/** Set by a command's action; the highest value wins. */
export class ExitStatus {
  code = EXIT_OK;
  raise(code: number): void {
    if (code > this.code) this.code = code;
  }
}
