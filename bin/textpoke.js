#!/usr/bin/env node
import { main } from '../dist/src/cli/main.js';

// A reader that stops early (`| head`) is not an error.
for (const s of [process.stdout, process.stderr]) {
  s.on('error', (e) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}
main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
