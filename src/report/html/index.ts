/**
 * `textpoke/html`: the self-contained HTML report as a library, in the pieces the command and the playground
 * put together. `analyse` collects what the report shows for one image, `modelTraces` runs the model checker's
 * table for it, `renderPage` assembles the page (the caller passes the viewer's and Graphviz's JavaScript in,
 * so this stays browser-safe), and `mount` is the viewer itself, for a page that shows the data in place.
 */
export { analyse } from './data.js';
export type {
  AnalyseOptions,
  FileData,
  FindingData,
  FnDetail,
  FnEntry,
  ModelSite,
  ModelTrace,
  ReportData,
} from './data.js';
export { modelTraces } from './model.js';
export { renderPage } from './page.js';
export type { PageParts } from './page.js';
export { mount } from './viewer.js';
export type { Host, VizLike } from './viewer.js';
