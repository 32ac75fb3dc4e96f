/**
 * The playground's build. The library runs unchanged in the browser; the one adaptation is for iced-x86,
 * whose npm package is wasm-bindgen's Node.js target: it `require`s util for TextDecoder/TextEncoder and
 * reads iced_x86_bg.wasm with fs at load time. The small plugin below rewrites exactly those lines of
 * iced_x86.js at build time: the globals for util, and the wasm bytes inlined (base64) for path/fs. The
 * WebAssembly module is then compiled synchronously as before, which browsers allow in a Web Worker,
 * where the analysis runs. Nothing is fetched from anywhere at run time; files never leave the browser.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

function icedInBrowser(): Plugin {
  const icedJs = require.resolve('iced-x86');
  const wasm = join(dirname(icedJs), 'iced_x86_bg.wasm');
  return {
    name: 'textpoke-iced-x86-browser',
    enforce: 'pre',
    transform(code, id) {
      if (!id.replace(/\\/g, '/').endsWith('iced-x86/iced_x86.js')) return null;
      const util = 'const { TextDecoder, TextEncoder } = require(`util`);';
      const load =
        "const path = require('path').join(__dirname, 'iced_x86_bg.wasm');\nconst bytes = require('fs').readFileSync(path);";
      if (!code.includes(util) || !code.includes(load))
        this.error('iced-x86: the Node.js loader lines this build rewrites have changed; update web/vite.config.ts');
      const b64 = readFileSync(wasm).toString('base64');
      return code
        .replace(util, 'const { TextDecoder, TextEncoder } = globalThis;')
        .replace(load, `const bytes = Uint8Array.from(atob(${JSON.stringify(b64)}), (c) => c.charCodeAt(0));`);
    },
  };
}

export default defineConfig({
  root: here,
  base: './',
  plugins: [icedInBrowser()],
  build: {
    outDir: resolve(here, '..', 'dist', 'web'),
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 8000,
  },
  worker: { format: 'es', plugins: () => [icedInBrowser()] },
  optimizeDeps: { exclude: ['iced-x86'] },
  preview: { host: '127.0.0.1', port: 4173, strictPort: false },
  server: { host: '127.0.0.1' },
});
