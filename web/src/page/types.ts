/** The JSON-RPC results the page reads (docs/page.md section 2; conventions of docs/rpc.md:
 * amounts are decimal strings, heights and counts numbers, bytes hex, addresses cm1...). */
import type { Currency } from './format.js';

export interface MallInfo {
  chain_id: string;
  name: string;
  currency: Currency;
  ranking: 'trust' | 'sales';
  height: number;
  validator_set_hash: string;
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

interface ProductFields {
  id: string;
  title: string;
  category: string;
  price: string;
  stock: number;
  sold: number;
  status: 'active' | 'delisted';
  listed_height: number;
}

export interface ProductSummary extends ProductFields {
  merchant: PartyRef;
  certified_by: PartyRef | null;
  reputation: Reputation | null;
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
  height: number;
  reply: { text: string; height: number } | null;
}

export interface ProductPage extends ProductFields {
  items: string[];
  merchant: PartyRef & {
    jurisdiction: string;
    certifications: { certifier: PartyRef; brand: string; height: number }[];
    reputation: Reputation | null;
  };
  reviews: Review[];
}
