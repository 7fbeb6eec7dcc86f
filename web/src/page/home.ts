/** Home: the search box's results, or the top products. */
import { formatAmount, plural } from './format.js';
import { h, show } from './dom.js';
import { call } from './rpc.js';
import type { MallInfo, ProductList, ProductSummary } from './types.js';

export const PRODUCTS_SHOWN_MAX = 24;

function productCard(product: ProductSummary, info: MallInfo): HTMLElement {
  const certified = product.certified_by
    ? h('span', { class: 'badge certified' }, `✓ Certified by ${product.certified_by.name}`)
    : h('span', { class: 'badge uncertified' }, 'not certified');
  const reputation = product.reputation;
  return h('li', { class: 'card', 'data-product': product.id },
    h('h3', {}, h('a', { href: `/product/${encodeURIComponent(product.id)}` }, product.title)),
    h('p', { class: 'price' }, formatAmount(product.price, info.currency)),
    h('p', {}, `${product.merchant.name} `, certified),
    h('p', { class: 'note' },
      `Reputation ${reputation.score}/${reputation.scale} (${plural(reputation.reviews, 'review')}) · ${product.stock} in stock`),
  );
}

export async function renderHome(app: HTMLElement, info: MallInfo, query: string): Promise<void> {
  const list = await call<ProductList>('mall.products', { query, limit: PRODUCTS_SHOWN_MAX });
  document.title = query ? `${query} · ${info.name}` : info.name;
  const heading = query
    ? `Products matching “${query}”`
    : list.ranking === 'trust' ? 'Top products by trust' : 'Top products by sales';
  show(app,
    h('h1', {}, heading),
    list.products.length
      ? h('ul', { class: 'cards' }, list.products.map((p) => productCard(p, info)))
      : h('p', { class: 'note' }, query ? 'No product matches.' : 'No products are listed yet.'),
  );
}
