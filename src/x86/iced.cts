/**
 * iced-x86 loaded through require(): the package is CommonJS, and importing it from an ES module makes
 * Node scan its 900 KB of JavaScript for export names on every start (a tenth of a small run). Modules
 * take the runtime values from here (`import iced from './iced.cjs'`) and types with `import type`.
 */
import iced = require('iced-x86');
export = iced;
