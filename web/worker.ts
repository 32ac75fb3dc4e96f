/**
 * Analysis in a Web Worker: the same library calls as `textpoke report` (unpack, parse, detect, sites,
 * patch, checks, cfg), then the model checker's table with a small state bound. Runs off the page's
 * main thread so the page stays responsive on a whole hypervisor.
 */
import { imageFromBytes } from '../src/index.js';
import { analyse, modelTraces } from '../src/report/html/index.js';
import type { ReportData, ModelTrace } from '../src/report/html/index.js';

export interface ToWorker {
  name: string;
  bytes: Uint8Array;
  cpu?: string;
}

export type FromWorker =
  | { kind: 'progress'; text: string }
  | { kind: 'error'; message: string }
  | { kind: 'done'; data: ReportData };

const post = (m: FromWorker): void => (self as unknown as Worker).postMessage(m);

self.onmessage = async (ev: MessageEvent<ToWorker>) => {
  const { name, bytes, cpu } = ev.data;
  try {
    post({ kind: 'progress', text: 'unpacking and parsing' });
    const img = await imageFromBytes(bytes, name);
    post({ kind: 'progress', text: 'reading sites, patching, running checks' });
    const file = analyse(img, { defaultCpu: cpu });
    post({ kind: 'progress', text: 'model checking the live-patching protocols' });
    const missing: string[] = [];
    let model: ModelTrace[] | undefined;
    try {
      model = modelTraces(3000, file.modelSite ? [file.modelSite] : []);
    } catch (e) {
      missing.push(`Model checker results are missing: ${e instanceof Error ? e.message : String(e)}`);
    }
    post({
      kind: 'done',
      data: { generator: 'textpoke playground', files: [file], ...(model ? { model } : {}), missing },
    });
  } catch (e) {
    post({ kind: 'error', message: e instanceof Error ? e.message : String(e) });
  }
};
