// Drives Debian's headless Chromium (playwright-core, never a downloaded browser) through
// the product page served by real chainmall nodes, and reports what it saw as one JSON
// object on stdout; tests/web/test_web_page.py starts the nodes and asserts on it.
// Screenshots at phone and desktop width go to --out.
//
//   node browser/check.mjs --base URL --tampered URL --ring URI --lot URI --large URI \
//     --product ID --uncertified ID --out DIR [--chromium PATH] [--timing-runs N] \
//     [--cometbft-vectors FILE]  (the ring's page answered with a CometBFT-anchored history)
//   node browser/check.mjs --only-large --base URL --large URI [--timing-runs N]
//     (bench/bench_page.py: only the 1,000-event item's loads, timed)
import { chromium } from 'playwright-core';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    base: { type: 'string' },
    tampered: { type: 'string' },
    ring: { type: 'string' },
    lot: { type: 'string' },
    large: { type: 'string' },
    product: { type: 'string' },
    uncertified: { type: 'string' },
    out: { type: 'string' },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    'timing-runs': { type: 'string', default: '3' },
    'only-large': { type: 'boolean', default: false },
    'cometbft-vectors': { type: 'string' },
  },
});
const onlyLarge = args['only-large'];
const required = onlyLarge ? ['base', 'large']
  : ['base', 'tampered', 'ring', 'lot', 'large', 'product', 'uncertified', 'out'];
for (const name of required) {
  if (!args[name]) {
    console.error(`error: --${name} is required`);
    process.exit(2);
  }
}

const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };
const PAGE_TIMEOUT_MS = 30_000;
const runs = Number(args['timing-runs']);

/** The page path of an item, as the page and core/mall/storefront.py write it. */
function itemPath(uri) {
  const safe = { '%3A': ':', '%40': '@', '%24': '$', '%26': '&', '%2B': '+', '%2C': ',', '%3B': ';', '%3D': '=' };
  return `/item/${encodeURIComponent(uri).replace(/%(3A|40|24|26|2B|2C|3B|3D)/g, (m) => safe[m])}`;
}

const origins = [args.base, args.tampered].filter(Boolean).map((u) => new URL(u).origin);
const foreignRequests = [];

async function open(context, url, setup) {
  const page = await context.newPage();
  page.setDefaultTimeout(PAGE_TIMEOUT_MS);
  const errors = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  page.on('request', (request) => {
    const origin = new URL(request.url()).origin;
    if (!origins.includes(origin) && !request.url().startsWith('data:')) foreignRequests.push(request.url());
  });
  if (setup) await setup(page);
  const started = Date.now();
  await page.goto(url);
  await page.waitForSelector('body[data-state="done"], body[data-state="error"]');
  const loadMs = Date.now() - started;
  const state = await page.getAttribute('body', 'data-state');
  return { page, errors, state, loadMs };
}

/** A man in the middle: the item history answer with one byte of the commit certificate changed. */
async function alterCommit(page) {
  await page.route('**/', async (route) => {
    const request = route.request();
    if (request.method() !== 'POST' || !String(request.postData()).includes('mall.item_trace')) return route.continue();
    const response = await route.fetch();
    const body = await response.json();
    const commit = body.result.anchor.commit;
    const at = 120; // inside the first signature
    const flipped = (parseInt(commit.slice(at, at + 2), 16) ^ 1).toString(16).padStart(2, '0');
    body.result.anchor.commit = commit.slice(0, at) + flipped + commit.slice(at + 2);
    await route.fulfill({ response, json: body });
  });
}

/** The node's item history answered instead with `answer` (a CometBFT-anchored one). */
function answerWith(answer) {
  return async (page) => page.route('**/', async (route) => {
    const request = route.request();
    if (request.method() !== 'POST' || !String(request.postData()).includes('mall.item_trace')) return route.continue();
    const { id } = JSON.parse(request.postData());
    await route.fulfill({ json: { jsonrpc: '2.0', id, result: answer } });
  });
}

/** Whether a PNG is more than a blank page: decoded in the browser, its colours counted. */
async function pictureStats(page, png) {
  return page.evaluate(async (base64) => {
    const image = new Image();
    image.src = `data:image/png;base64,${base64}`;
    await image.decode();
    const canvas = document.createElement('canvas');
    canvas.width = image.naturalWidth;
    canvas.height = image.naturalHeight;
    const context = canvas.getContext('2d');
    context.drawImage(image, 0, 0);
    const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
    const counts = new Map();
    for (let i = 0; i < data.length; i += 4 * 7) { // every 7th pixel is plenty
      const colour = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
      counts.set(colour, (counts.get(colour) ?? 0) + 1);
    }
    const sampled = Math.ceil(data.length / (4 * 7));
    const dominant = Math.max(...counts.values());
    return { width: canvas.width, height: canvas.height, colours: counts.size, non_dominant: 1 - dominant / sampled };
  }, png.toString('base64'));
}

async function screenshot(context, url, name, viewport, shots) {
  const page = await context.newPage();
  await page.setViewportSize(viewport);
  await page.goto(url);
  await page.waitForSelector('body[data-state="done"], body[data-state="error"]');
  const png = await page.screenshot({ fullPage: false });
  const path = join(args.out, `${name}.png`);
  await writeFile(path, png);
  await page.close();
  const blank = await context.newPage(); // the node's pages forbid data: images (CSP)
  shots.push({ name, path, bytes: png.length, ...(await pictureStats(blank, png)) });
  await blank.close();
}

async function itemReport(page) {
  return page.evaluate(() => {
    const steps = [...document.querySelectorAll('li.step')].map((li) => {
      const mark = li.querySelector('.mark');
      return {
        mark: li.dataset.mark,
        id: li.dataset.id,
        item: li.dataset.item,
        seq: Number(li.dataset.seq),
        text: mark?.textContent ?? '',
        colour: mark ? getComputedStyle(mark).color : '',
        why: li.querySelector('.why')?.textContent ?? '',
        title: li.querySelector('h3')?.textContent ?? '',
      };
    });
    const verdict = document.getElementById('verdict');
    const qr = document.querySelector('svg.qr');
    return {
      steps,
      verdict: verdict?.dataset.verified ?? null,
      verdict_text: verdict?.textContent ?? '',
      corrections: document.querySelectorAll('.flag.correction').length,
      erroneous: document.querySelectorAll('.flag.erroneous').length,
      qr: qr ? { url: qr.dataset.url, modules: qr.querySelector('path')?.getAttribute('d')?.split('M').length - 1 } : null,
      timing: window.chainmall?.timing ?? null,
    };
  });
}

const dataDir = await mkdtemp(join(tmpdir(), 'chainmall-chromium-'));
if (!onlyLarge) await mkdir(args.out, { recursive: true });
const context = await chromium.launchPersistentContext(dataDir, {
  executablePath: args.chromium,
  headless: true,
  args: FLAGS,
  viewport: DESKTOP,
});
const result = { browser: context.browser()?.version() ?? null, shots: [] };
const ringPath = itemPath(args.ring);
try {
  if (!onlyLarge) await checkPages();
  result.large = [];
  for (let run = 0; run < runs; run++) {
    const large = await open(context, `${args.base}${itemPath(args.large)}`);
    const report = await itemReport(large.page);
    result.large.push({
      state: large.state,
      steps: report.steps.length,
      verified: report.steps.filter((s) => s.mark === 'verified').length,
      not_verified: report.steps.filter((s) => s.mark !== 'verified')
        .map((s) => ({ id: s.id, text: s.text, colour: s.colour, why: s.why })),
      verdict: report.verdict,
      verdict_text: report.verdict_text,
      timing: report.timing,
      load_ms: large.loadMs,
    });
    await large.page.close();
  }
  result.foreign_requests = foreignRequests;
} finally {
  await context.close();
  await rm(dataDir, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(result) + '\n');

/** Every page of the story, the tampered node, the altered certificate, the screenshots. */
async function checkPages() {
  const home = await open(context, `${args.base}/`);
  result.home = await home.page.evaluate(() => ({
    products: [...document.querySelectorAll('[data-product]')].map((el) => el.dataset.product),
    heading: document.querySelector('h1')?.textContent ?? '',
  }));
  result.home.errors = home.errors;
  await home.page.close();

  const search = await open(context, `${args.base}/?q=earrings`);
  result.search = await search.page.evaluate(() => [...document.querySelectorAll('[data-product]')].map((el) => el.dataset.product));
  await search.page.close();

  const product = await open(context, `${args.base}/product/${args.product}`);
  result.product = await product.page.evaluate(() => ({
    title: document.querySelector('h1')?.textContent ?? '',
    badges: [...document.querySelectorAll('.badge')].map((el) => el.textContent),
    reviews: document.querySelectorAll('.review').length,
    replies: [...document.querySelectorAll('.reply')].map((el) => el.textContent),
    items: [...document.querySelectorAll('.items a')].map((el) => el.getAttribute('href')),
    text: document.querySelector('main')?.textContent ?? '',
  }));
  await product.page.close();
  const uncertified = await open(context, `${args.base}/product/${args.uncertified}`);
  result.uncertified_badges = await uncertified.page.evaluate(() => [...document.querySelectorAll('.badge')].map((el) => el.textContent));
  await uncertified.page.close();

  result.item_loads_ms = [];
  for (let run = 0; run < runs; run++) {
    const item = await open(context, `${args.base}${ringPath}`);
    result.item_loads_ms.push(item.loadMs);
    if (run === 0) result.item = { state: item.state, errors: item.errors, ...(await itemReport(item.page)) };
    await item.page.close();
  }

  const pinned = await open(context, `${args.base}${result.item.qr ? new URL(result.item.qr.url).pathname + new URL(result.item.qr.url).search : ringPath}`);
  result.pinned = { state: pinned.state, ...(await itemReport(pinned.page)) };
  await pinned.page.close();
  const otherSet = await open(context, `${args.base}${ringPath}?vs=${'00'.repeat(32)}`);
  result.other_set = { state: otherSet.state, ...(await itemReport(otherSet.page)) };
  await otherSet.page.close();

  const missing = await open(context, `${args.base}/item/urn:epc:id:sgtin:0.0.404`);
  result.missing_item = { state: missing.state, text: await missing.page.textContent('main') };
  await missing.page.close();

  const tampered = await open(context, `${args.tampered}${ringPath}`);
  result.tampered = { state: tampered.state, ...(await itemReport(tampered.page)) };
  await tampered.page.close();

  if (args['cometbft-vectors']) {
    const vectors = JSON.parse(await readFile(args['cometbft-vectors'], 'utf-8'));
    const comet = await open(context, `${args.base}${ringPath}`, answerWith(vectors.trace.answer));
    result.cometbft = { state: comet.state, ...(await itemReport(comet.page)), how: await comet.page.textContent('details.how') };
    await comet.page.close();
  }

  const commitTampered = await open(context, `${args.base}${ringPath}`, alterCommit);
  result.commit_tampered = { state: commitTampered.state, ...(await itemReport(commitTampered.page)) };
  await commitTampered.page.close();

  for (const [name, url] of [
    ['home', `${args.base}/`],
    ['product', `${args.base}/product/${args.product}`],
    ['item', `${args.base}${ringPath}`],
    ['item-tampered', `${args.tampered}${ringPath}`],
  ]) {
    await screenshot(context, url, `${name}-phone`, PHONE, result.shots);
    await screenshot(context, url, `${name}-desktop`, DESKTOP, result.shots);
  }
}
