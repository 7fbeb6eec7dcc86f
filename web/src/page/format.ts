/** Turning ledger values into words: amounts, times with their zone, steps, short hashes. */

export interface Currency {
  symbol: string;
  decimals: number;
}

/** An amount in the smallest unit (u64 decimal string) in whole units: "89.00 CMT". */
export function formatAmount(amount: string, currency: Currency): string {
  if (!/^\d+$/.test(amount)) return `${amount} ${currency.symbol}`;
  const value = BigInt(amount);
  if (currency.decimals <= 0) return `${value} ${currency.symbol}`;
  const unit = 10n ** BigInt(currency.decimals);
  const fraction = String(value % unit).padStart(currency.decimals, '0');
  return `${value / unit}.${fraction} ${currency.symbol}`;
}

/** "+05:30" / "−04:00" for an offset in minutes. */
export function formatOffset(minutes: number): string {
  const sign = minutes < 0 ? '−' : '+';
  const magnitude = Math.abs(minutes);
  return `${sign}${String(Math.floor(magnitude / 60)).padStart(2, '0')}:${String(magnitude % 60).padStart(2, '0')}`;
}

/** An instant shown in the time zone it was recorded in: "2026-04-01 08:00 (UTC−04:00)". */
export function formatEventTime(timeMs: bigint, tzOffsetMin: number): string {
  const local = new Date(Number(timeMs) + tzOffsetMin * 60_000);
  if (Number.isNaN(local.getTime())) return `${timeMs} ms (UTC${formatOffset(tzOffsetMin)})`;
  return `${local.toISOString().slice(0, 16).replace('T', ' ')} (UTC${formatOffset(tzOffsetMin)})`;
}

/** A block time (ms since the epoch) in UTC. */
export function formatBlockTime(timeMs: bigint): string {
  const date = new Date(Number(timeMs));
  return Number.isNaN(date.getTime()) ? `${timeMs} ms` : `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

const STEP_WORDS: Record<string, string> = {
  commissioning: 'Made (commissioned)',
  creating_class_instance: 'Made from other items',
  inspecting: 'Inspected',
  shipping: 'Shipped',
  receiving: 'Received',
  accepting: 'Accepted by the buyer',
  arriving: 'Arrived',
  packing: 'Packed',
  unpacking: 'Unpacked',
  transporting: 'Transported',
  storing: 'Stored',
  retail_selling: 'Sold',
  repairing: 'Repaired',
};

/** A CBV business step in words ("creating_class_instance" -> "Made from other items"). */
export function stepWords(bizStep: string | null): string {
  if (!bizStep) return 'Event';
  if (STEP_WORDS[bizStep]) return STEP_WORDS[bizStep];
  const words = bizStep.replace(/_/g, ' ').trim();
  return words ? words[0].toUpperCase() + words.slice(1) : 'Event';
}

/** A CBV word in plain words: "non_conformant" -> "non conformant". */
export function plainWord(word: string): string {
  return word.replace(/_/g, ' ');
}

const ILMD_WORDS: Record<string, string> = {
  'cbvmda:lotNumber': 'Lot', 'cbvmda:countryOfOrigin': 'Country of origin', 'cbvmda:bestBeforeDate': 'Best before',
  'cbvmda:itemExpirationDate': 'Expires', 'chainmall:productionDate': 'Made on', 'chainmall:material': 'Material',
  'chainmall:fineness': 'Fineness', 'chainmall:origin': 'Origin',
};

/** A lot data field's name in words. */
export function ilmdWords(field: string): string {
  return ILMD_WORDS[field] ?? field;
}

const PATH_SAFE: Record<string, string> = {
  '%3A': ':', '%40': '@', '%24': '$', '%26': '&', '%2B': '+', '%2C': ',', '%3B': ';', '%3D': '=',
};

/** An item's page path: /item/<its URI as one percent-encoded segment>, keeping the same
 * characters readable as core/mall/storefront.py `item_page_path`. */
export function itemPath(uri: string): string {
  return `/item/${encodeURIComponent(uri).replace(/%(3A|40|24|26|2B|2C|3B|3D)/g, (m) => PATH_SAFE[m])}`;
}

/** The first and last characters of a long identifier. */
export function shortText(text: string, keep = 10): string {
  return text.length <= 2 * keep + 1 ? text : `${text.slice(0, keep)}…${text.slice(-keep)}`;
}

/** "★★★★☆" for a 1..5 rating. */
export function stars(rating: number): string {
  const whole = Math.max(0, Math.min(5, Math.round(rating)));
  return '★'.repeat(whole) + '☆'.repeat(5 - whole);
}

/** "1 review", "3 reviews". */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
