/** Home: the search box's results, or the top products. */
import { formatAmount, plural } from './format.js';
import { h, show } from './dom.js';
import { call } from './rpc.js';
import type { MallInfo, ProductList, ProductSummary, Reputation } from './types.js';

export const PRODUCTS_SHOWN_MAX = 24;

/** "Reputation 94/100 (3 reviews)" ("94/100 (3 reviews)" beside a label), or that there is
 * none yet. */
export function reputationWords(reputation: Reputation | null, labelled = true): string {
  if (!reputation) return 'Not rated yet';
  const score = `${reputation.score}/${reputation.scale} (${plural(reputation.reviews, 'review')})`;
  return labelled ? `Reputation ${score}` : score;
}

function productCard(product: ProductSummary, info: MallInfo): HTMLElement {
  const certified = product.certified_by
    ? h('span', { class: 'badge certified' }, `✓ Certified by ${product.certified_by.name}`)
    : h('span', { class: 'badge uncertified' }, 'not certified');
  return h('li', { class: 'card', 'data-product': product.id },
    h('h3', {}, h('a', { href: `/product/${product.id}` }, product.title)),
    h('p', { class: 'price' }, formatAmount(product.price, info.currency)),
    h('p', {}, `${product.merchant.name || product.merchant.address} `, certified),
    h('p', { class: 'note' },
      `${reputationWords(product.reputation)} · ${product.stock} in stock · ${product.sold} sold`),
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
