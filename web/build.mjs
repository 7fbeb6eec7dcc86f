// Builds the product page into the Python package (core/rpc/static/), or the
// tests into .build/test/ with `node build.mjs test`. esbuild bundles
// @noble/hashes and @noble/curves in: the page loads nothing from elsewhere.
import { build } from 'esbuild';
import { copyFile, mkdir, readdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const mode = process.argv[2] ?? 'page';

async function buildPage() {
  const out = join(here, '..', 'core', 'rpc', 'static');
  await rm(out, { recursive: true, force: true });
  await mkdir(out, { recursive: true });
  await build({
    entryPoints: [join(here, 'src', 'main.ts')],
    outfile: join(out, 'app.js'),
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['es2020'],
    legalComments: 'eof',
    logLevel: 'warning',
  });
  for (const name of ['index.html', 'style.css', 'favicon.svg']) {
    await copyFile(join(here, 'static', name), join(out, name));
  }
  console.log(`built the product page into ${out}`);
}

async function buildTests() {
  const out = join(here, '.build', 'test');
  await rm(out, { recursive: true, force: true });
  const tests = (await readdir(join(here, 'test'))).filter((name) => name.endsWith('.test.ts'));
  await build({
    entryPoints: tests.map((name) => join(here, 'test', name)),
    outdir: out,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: ['node20'],
    packages: 'external',
    logLevel: 'warning',
  });
}

if (mode === 'page') await buildPage();
else if (mode === 'test') await buildTests();
else {
  console.error(`error: unknown build mode ${JSON.stringify(mode)} (use: page, test)`);
  process.exit(2);
}
