/**
 * Playground page: takes a dropped or chosen file, hands its bytes to the analysis worker (nothing is
 * uploaded anywhere), and shows the result with the report's own viewer; Graphviz (WebAssembly) lays out
 * the graphs in the page.
 */
import { instance } from '@viz-js/viz';
import { mount } from '../src/report/html/viewer.js';
import type { ReportData } from '../src/report/html/index.js';
import type { FromWorker } from './worker.js';

const drop = document.getElementById('drop')!;
const input = document.getElementById('file') as HTMLInputElement;
const cpu = document.getElementById('cpu') as HTMLInputElement;
const status = document.getElementById('status')!;
const app = document.getElementById('app')!;
let worker: Worker | undefined;
let unmount: (() => void) | undefined;
let vizP: ReturnType<typeof instance> | undefined;

function say(text: string, error = false): void {
  status.textContent = text;
  status.classList.toggle('error', error);
}

function show(data: ReportData): void {
  unmount?.();
  location.hash = '#/summary';
  unmount = mount(app, data, {
    viz: () => (vizP ??= instance()),
    detail: async (f, i) => data.files[f]!.details[i]!,
  });
}

async function analyse(file: File): Promise<void> {
  worker?.terminate();
  worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
  const started = performance.now();
  say(`reading ${file.name} (${(file.size / 1e6).toFixed(1)} MB)…`);
  document.body.dataset.state = 'busy';
  const bytes = new Uint8Array(await file.arrayBuffer());
  worker.onmessage = (ev: MessageEvent<FromWorker>) => {
    const m = ev.data;
    if (m.kind === 'progress') say(`${file.name}: ${m.text} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
    else if (m.kind === 'error') {
      say(`${file.name}: ${m.message}`, true);
      document.body.dataset.state = 'error';
    } else {
      const f = m.data.files[0]!;
      say(
        `${file.name}: ${f.findings.length} findings, ${Object.values(f.counts).reduce((a, b) => a + b, 0)} patch sites, analysed in this browser in ${((performance.now() - started) / 1000).toFixed(1)} s`,
      );
      show(m.data);
      document.body.dataset.state = 'done';
    }
  };
  worker.onerror = (e) => {
    say(`${file.name}: ${e.message}`, true);
    document.body.dataset.state = 'error';
  };
  worker.postMessage({ name: file.name, bytes, cpu: cpu.value.trim() || undefined }, [bytes.buffer]);
}

input.addEventListener('change', () => {
  const f = input.files?.[0];
  if (f) void analyse(f);
});
drop.addEventListener('dragover', (e) => {
  e.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  const f = e.dataTransfer?.files[0];
  if (f) void analyse(f);
});
document.body.dataset.state = 'ready';
