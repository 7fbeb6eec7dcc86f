/** Where the shared test data lives: the repository root, above web/. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Built tests run from web/.build/test/; the repository root is three levels up.
export const REPO_ROOT = process.env.CHAINMALL_ROOT ?? fileURLToPath(new URL('../../../', import.meta.url));

/** A JSON file of the repository, parsed. */
export function readJson(...parts: string[]): any {
  return JSON.parse(readFileSync(join(REPO_ROOT, ...parts), 'utf-8'));
}
