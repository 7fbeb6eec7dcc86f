/** The JSON-RPC results the page reads (docs/page.md section 2); u64 values are decimal strings. */
import type { Currency } from './format.js';

export interface MallInfo {
  chain_id: string;
  name: string;
  currency: Currency;
  ranking: 'trust' | 'sales';
}

export interface PartyRef {
  address: string;
  name: string;
}

export interface Reputation {
  score: number;
  scale: number;
  reviews: number;
}

export interface ProductSummary {
  id: string;
  title: string;
  category: string;
  price: string;
  stock: string;
  sold: string;
  merchant: PartyRef;
  certified_by: PartyRef | null;
  reputation: Reputation;
}

export interface ProductList {
  query: string;
  ranking: 'trust' | 'sales' | 'match';
  products: ProductSummary[];
}

export interface Review {
  order: string;
  author: string;
  rating: number;
  text: string;
  height: string;
  reply: { text: string; height: string } | null;
}

export interface ProductPage {
  id: string;
  title: string;
  category: string;
  price: string;
  stock: string;
  sold: string;
  items: string[];
  merchant: PartyRef & {
    jurisdiction: string;
    certifications: { certifier: PartyRef; brand: string; height: string }[];
    reputation: Reputation;
  };
  reviews: Review[];
}
