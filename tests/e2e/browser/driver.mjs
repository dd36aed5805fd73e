// Drives Debian's chromium for the dashboard's end-to-end tests.
// Reads one JSON command per line on stdin, answers one JSON line on stdout:
// {"ok": true, "value": ...} or {"ok": false, "error": "..."}.
// Usage: node driver.mjs USER_DATA_DIR   (the tests give a fresh directory)
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const userDataDir = process.argv[2];
if (!userDataDir) {
  process.stderr.write('usage: node driver.mjs USER_DATA_DIR\n');
  process.exit(2);
}
const executablePath = process.env.BCDR_CHROMIUM || '/usr/bin/chromium';

const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-quic', '--disable-dev-shm-usage'],
});
const page = context.pages()[0] || await context.newPage();
const problems = [];   // console errors, uncaught exceptions
const requests = [];   // every URL the page asked for, with its headers
page.on('console', msg => {
  if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
});
page.on('pageerror', err => problems.push(`exception: ${err.message}`));
page.on('request', req => requests.push({ url: req.url(), method: req.method(), headers: req.headers() }));

const ops = {
  async goto({ url }) { await page.goto(url, { waitUntil: 'load' }); return page.url(); },
  async wait({ selector, ms = 5000, state = 'visible' }) {
    const t0 = Date.now();
    await page.waitForSelector(selector, { timeout: ms, state });
    return Date.now() - t0;
  },
  async click({ selector }) { await page.click(selector, { timeout: 5000 }); return null; },
  async fill({ selector, value }) { await page.fill(selector, value, { timeout: 5000 }); return null; },
  async select({ selector, value }) { return page.selectOption(selector, value, { timeout: 5000 }); },
  async press({ key }) { await page.keyboard.press(key); return null; },
  async text({ selector }) { return page.textContent(selector, { timeout: 5000 }); },
  async count({ selector }) { return page.locator(selector).count(); },
  async eval({ expr }) { return page.evaluate(expr); },
  async viewport({ width, height }) { await page.setViewportSize({ width, height }); return null; },
  async scheme({ scheme }) { await page.emulateMedia({ colorScheme: scheme }); return null; },
  async screenshot({ path, fullPage = true }) { await page.screenshot({ path, fullPage }); return path; },
  async problems() { return problems.splice(0); },
  async requests() { return requests.splice(0); },
};

const out = line => new Promise(resolve => process.stdout.write(JSON.stringify(line) + '\n', resolve));
const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  let cmd;
  try { cmd = JSON.parse(line); } catch (e) { await out({ ok: false, error: 'bad json' }); continue; }
  if (cmd.op === 'close') break;
  const op = ops[cmd.op];
  if (!op) { await out({ ok: false, error: `unknown op '${cmd.op}'` }); continue; }
  try {
    await out({ ok: true, value: await op(cmd) });
  } catch (e) {
    await out({ ok: false, error: String(e && e.message || e).split('\n').slice(0, 6).join('\n') });
  }
}
await context.close();
process.exit(0);
