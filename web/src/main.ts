/** The product page: routes /, /product/<id> and /item/<id> to their views (docs/page.md). */
import { h, show } from './page/dom.js';
import { renderHome } from './page/home.js';
import { type ItemTiming, renderItem } from './page/item.js';
import { renderProduct } from './page/product.js';
import { RpcError, call } from './page/rpc.js';
import type { MallInfo } from './page/types.js';

declare global {
  interface Window {
    /** Read by the browser test: what the page did and how long it took. */
    chainmall?: { route: string; timing?: ItemTiming; error?: string };
  }
}

function segment(path: string, prefix: string): string | null {
  if (!path.startsWith(prefix)) return null;
  const rest = path.slice(prefix.length);
  if (!rest || rest.includes('/')) return null;
  try {
    return decodeURIComponent(rest);
  } catch {
    return null;
  }
}

async function route(app: HTMLElement): Promise<void> {
  const path = location.pathname;
  const state: NonNullable<Window['chainmall']> = { route: path };
  window.chainmall = state;
  try {
    const item = segment(path, '/item/');
    // The history is asked for at once, beside mall.info: one round trip less before it shows.
    const history = item !== null ? call<unknown>('mall.item_trace', { item }) : null;
    history?.catch(() => undefined); // its failure is reported where it is awaited
    const info = await call<MallInfo>('mall.info', {});
    const search = document.querySelector<HTMLInputElement>('.search input');
    const query = new URLSearchParams(location.search).get('q') ?? '';
    if (search) search.value = query;
    const product = segment(path, '/product/');
    if (path === '/' || path === '/index.html') await renderHome(app, info, query.trim());
    else if (product !== null) await renderProduct(app, info, product);
    else if (item !== null && history !== null) state.timing = await renderItem(app, info, item, history);
    else show(app, h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '/' }, 'Back to the shop')));
    document.body.dataset.state = 'done';
  } catch (error) {
    const message = error instanceof RpcError ? error.message : `the page failed: ${(error as Error).message}`;
    state.error = message;
    show(app, h('p', { class: 'error' }, `Sorry, ${message}.`), h('p', {}, h('a', { href: '/' }, 'Back to the shop')));
    document.body.dataset.state = 'error';
  }
}

const app = document.getElementById('app');
if (app) void route(app);
