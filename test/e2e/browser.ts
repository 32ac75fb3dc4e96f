/**
 * Launching Debian's chromium (headless) through playwright-core for the end-to-end tests and the report
 * benchmark. Never downloads a browser: the executable is /usr/bin/chromium (apt package chromium), or
 * CHROMIUM_PATH. Each launch gets a fresh profile directory, removed on close.
 *
 * A browser that is missing or cannot start fails the launch at once with one line naming the executable
 * (`--version` must answer within PROBE_MS, the launch itself within LAUNCH_MS), and every later launch in the same test file fails with the
 * same line without trying again. Every page operation has a default time limit, so a page that never
 * reaches a state fails its test instead of waiting.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { BrowserContext } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const LAUNCH_MS = 20_000;
const PROBE_MS = 10_000;
/** Default limit for page operations (waitForSelector, click, goto, ...) unless a call passes its own. */
export const PAGE_MS = 90_000;

export interface Launched {
  context: BrowserContext;
  close(): Promise<void>;
}

/** An error whose report is its one-line message (no stack: the reason is outside the code). */
export class BrowserUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BrowserUnavailable';
    this.stack = `${this.name}: ${message}`;
  }
}

let unavailable: BrowserUnavailable | undefined;

function preflight(): void {
  const hint = 'install the Debian package chromium, or point CHROMIUM_PATH at a chromium binary';
  let st;
  try {
    st = statSync(CHROMIUM);
  } catch {
    throw new BrowserUnavailable(`chromium cannot start: ${CHROMIUM} does not exist (${hint})`);
  }
  try {
    if (!st.isFile()) throw new Error();
    accessSync(CHROMIUM, constants.X_OK);
  } catch {
    throw new BrowserUnavailable(`chromium cannot start: ${CHROMIUM} is not an executable file (${hint})`);
  }
  // A browser that starts prints its version at once; one that hangs or exits is caught here in seconds,
  // before playwright waits out its launch limit and then the browser's shutdown.
  const v = spawnSync(CHROMIUM, ['--version'], { encoding: 'utf8', timeout: PROBE_MS, killSignal: 'SIGKILL' });
  if (v.error || v.status !== 0 || !/chrom/i.test(v.stdout)) {
    const why = v.error
      ? (v.error as NodeJS.ErrnoException).code === 'ETIMEDOUT'
        ? `\`${CHROMIUM} --version\` did not answer in ${PROBE_MS / 1000} s`
        : v.error.message
      : `\`${CHROMIUM} --version\` ${v.status !== 0 ? `exited ${v.status ?? v.signal}` : 'printed no version'}`;
    throw new BrowserUnavailable(`chromium cannot start: ${why} (${hint})`);
  }
}

export async function launchChromium(viewport = { width: 1400, height: 1000 }): Promise<Launched> {
  if (unavailable) throw unavailable;
  try {
    preflight();
  } catch (e) {
    unavailable = e as BrowserUnavailable;
    throw e;
  }
  const profile = mkdtempSync(join(tmpdir(), 'textpoke-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport,
      timeout: LAUNCH_MS,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-dev-shm-usage',
      ],
    });
  } catch (e) {
    rmSync(profile, { recursive: true, force: true });
    const first = (e instanceof Error ? e.message : String(e))
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .slice(0, 1)
      .join('');
    unavailable = new BrowserUnavailable(`chromium cannot start (${CHROMIUM}): ${first}`);
    throw unavailable;
  }
  context.setDefaultTimeout(PAGE_MS);
  context.setDefaultNavigationTimeout(PAGE_MS);
  return {
    context,
    async close() {
      try {
        await context.close();
      } finally {
        rmSync(profile, { recursive: true, force: true });
      }
    },
  };
}
