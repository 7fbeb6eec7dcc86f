/** Product page: price, stock, the merchant's certification and reputation, items with their
 * histories, reviews and the merchant's replies. */
import { formatAmount, itemPath, shortText, stars } from './format.js';
import { h, show } from './dom.js';
import { reputationWords } from './home.js';
import { call } from './rpc.js';
import type { MallInfo, ProductPage } from './types.js';

export async function renderProduct(app: HTMLElement, info: MallInfo, id: string): Promise<void> {
  const product = await call<ProductPage>('mall.product', { id });
  document.title = `${product.title} · ${info.name}`;
  const merchant = product.merchant;
  const certificates = merchant.certifications.length
    ? merchant.certifications.map((c) =>
        h('span', { class: 'badge certified', 'data-certifier': c.certifier.address },
          `✓ Certified by ${c.certifier.name}`, c.brand ? ` as an official seller of ${c.brand}` : ''))
    : [h('span', { class: 'badge uncertified' }, 'not certified')];
  show(app,
    h('nav', { class: 'crumbs' }, h('a', { href: '/' }, 'Home'), ` › ${product.category}`),
    h('div', { class: 'product' },
      h('section', {},
        h('h1', {}, product.title),
        h('p', { class: 'price' }, formatAmount(product.price, info.currency)),
        h('p', {}, product.status === 'delisted' ? 'No longer sold'
          : product.stock > 0 ? `${product.stock} in stock` : 'Out of stock', ` · ${product.sold} sold`),
        product.items.length
          ? [h('h2', {}, 'Items and their histories'),
             h('p', { class: 'note' }, 'Each item’s history is checked in your browser against the ledger.'),
             h('ul', { class: 'items' }, product.items.map((item) =>
               h('li', {}, h('a', { href: itemPath(item) }, item))))]
          : null,
      ),
      h('aside', { class: 'panel merchant' },
        h('h2', {}, 'Sold by ', merchant.name || shortText(merchant.address, 12)),
        h('p', {}, ...certificates),
        h('dl', { class: 'facts' },
          h('dt', {}, 'Reputation'), h('dd', {}, reputationWords(merchant.reputation, false)),
          h('dt', {}, 'Jurisdiction'), h('dd', {}, merchant.jurisdiction || '—'),
          h('dt', {}, 'Account'), h('dd', { class: 'mono', title: merchant.address }, shortText(merchant.address, 12)),
        ),
      ),
    ),
    h('h2', {}, `Reviews (${product.reviews.length})`),
    product.reviews.length
      ? h('ul', { class: 'reviews' }, product.reviews.map((review) =>
          h('li', { class: 'review' },
            h('p', {}, h('span', { class: 'stars', 'aria-label': `${review.rating} of 5` }, stars(review.rating)),
              ' ', h('span', { class: 'note' }, `order ${shortText(review.order, 6)} · block ${review.height}`)),
            h('p', {}, review.text),
            review.reply ? h('p', { class: 'reply' }, h('strong', {}, `Reply from ${merchant.name}: `), review.reply.text) : null,
          )))
      : h('p', { class: 'note' }, 'No reviews yet.'),
  );
}
