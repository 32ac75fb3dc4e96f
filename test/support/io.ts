/** An `Io` for running the command line in-process (`main(argv, io)`) that keeps what it prints. */
import type { Io } from '../../src/cli/context.js';

/** Output and errors collected in `o` and `e` (reset them between runs by assigning ''). */
export function captureIo(): Io & { o: string; e: string } {
  const r = {
    o: '',
    e: '',
    isTTY: false,
    out(t: string) {
      r.o += t;
    },
    err(t: string) {
      r.e += t;
    },
  };
  return r;
}
