// A thin remote control for Debian's Chromium through playwright-core, driven by the Python tests.
//
// Protocol: one JSON object per line on stdin, {"id": n, "cmd": name, ...args}; one JSON object per line on
// stdout, {"id": n, "ok": true, "result": ...} or {"id": n, "ok": false, "error": message}. Pages are named
// ("main" exists after "launch"). Every JSON response of Label Studio's task API (the next task of the labeling
// stream, a task opened in the Data Manager) is recorded, in order, for "responses".
import readline from 'node:readline';
import { chromium } from 'playwright-core';

const FLAGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];
const RECORDED = /\/api\/(dm\/actions\?id=next_task|tasks\/\d+)/;

let context = null;
const pages = new Map();
const responses = [];

function record(page) {
  page.on('response', async (response) => {
    if (!RECORDED.test(response.url()) || response.request().method() === 'OPTIONS') return;
    let body = null;
    try {
      body = await response.json();
    } catch {
      return; // not JSON (or the page navigated away)
    }
    responses.push({ url: response.url(), method: response.request().method(), status: response.status(), body });
  });
}

function page(name = 'main') {
  const found = pages.get(name);
  if (!found) throw new Error(`no page named ${JSON.stringify(name)}; open it first (pages: ${[...pages.keys()]})`);
  return found;
}

function locate(args) {
  const loc = page(args.page).locator(args.selector, args.hasText ? { hasText: args.hasText } : {});
  return args.nth === undefined ? loc.first() : loc.nth(args.nth);
}

const commands = {
  async launch({ executablePath, userDataDir, width = 1400, height = 900 }) {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath, headless: true, args: FLAGS, viewport: { width, height },
    });
    const main = context.pages()[0] ?? (await context.newPage());
    record(main);
    pages.set('main', main);
    return { version: context.browser()?.version() ?? null };
  },
  async open({ page: name }) {
    if (!pages.has(name)) {
      const created = await context.newPage();
      record(created);
      pages.set(name, created);
    }
    return null;
  },
  async goto({ page: name, url }) {
    await page(name).goto(url, { waitUntil: 'domcontentloaded' });
    return page(name).url();
  },
  async pages() {
    return [...pages.keys()];
  },
  async url({ page: name }) {
    return page(name).url();
  },
  async fill(args) {
    await locate(args).fill(args.value);
    return null;
  },
  async click(args) {
    await locate(args).click({ timeout: args.timeoutMs ?? 30000 });
    return null;
  },
  async waitFor(args) {
    await locate(args).waitFor({ state: args.state ?? 'visible', timeout: args.timeoutMs ?? 30000 });
    return null;
  },
  async waitForUrl({ page: name, pattern, timeoutMs = 30000 }) {
    await page(name).waitForURL(new RegExp(pattern), { timeout: timeoutMs });
    return page(name).url();
  },
  async waitForFunction({ page: name, expression, arg = null, timeoutMs = 30000 }) {
    await page(name).waitForFunction(expression, arg, { timeout: timeoutMs });
    return null;
  },
  async count(args) {
    return page(args.page).locator(args.selector).count();
  },
  async texts(args) {
    return page(args.page).locator(args.selector).allInnerTexts();
  },
  async attribute(args) {
    return locate(args).getAttribute(args.name);
  },
  async screenshot({ page: name, path, fullPage = false }) {
    await page(name).screenshot({ path, fullPage });
    return path;
  },
  async responses({ since = 0 }) {
    return { items: responses.slice(since), next: responses.length };
  },
  async close() {
    if (context) await context.close();
    context = null;
    return null;
  },
};

const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  const { id, cmd, ...args } = JSON.parse(line);
  let answer;
  try {
    if (!(cmd in commands)) throw new Error(`unknown command ${JSON.stringify(cmd)}; known: ${Object.keys(commands)}`);
    answer = { id, ok: true, result: await commands[cmd](args) };
  } catch (error) {
    answer = { id, ok: false, error: String(error?.message ?? error) };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
  if (cmd === 'close') break;
}
process.exit(0);
