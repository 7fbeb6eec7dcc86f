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

/** An instant shown in the time zone the event was recorded in: "2026-04-01 08:00 (UTC−04:00)". */
export function formatEventTime(timeMs: bigint, tzOffset: string): string {
  const sign = tzOffset.startsWith('-') ? -1 : 1;
  const minutes = sign * (Number(tzOffset.slice(1, 3)) * 60 + Number(tzOffset.slice(4, 6)));
  const local = new Date(Number(timeMs) + minutes * 60_000);
  if (Number.isNaN(local.getTime())) return `${timeMs} ms (${tzOffset})`;
  const stamp = local.toISOString().slice(0, 16).replace('T', ' ');
  return `${stamp} (UTC${tzOffset.replace('-', '−')})`;
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
  accepting: 'Accepted',
  packing: 'Packed',
  unpacking: 'Unpacked',
  transporting: 'Transported',
  storing: 'Stored',
  retail_selling: 'Sold',
  repairing: 'Repaired',
};

/** A CBV business step in words ("creating_class_instance" -> "Made from other items"). */
export function stepWords(bizStep: string): string {
  if (STEP_WORDS[bizStep]) return STEP_WORDS[bizStep];
  const words = bizStep.replace(/_/g, ' ').trim();
  return words ? words[0].toUpperCase() + words.slice(1) : 'Event';
}

const KIND_WORDS: Record<string, string> = {
  object: 'object event',
  aggregation: 'aggregation',
  transformation: 'transformation',
  transaction: 'business transaction',
  custody: 'custody hand-over',
  correction: 'correction',
};

export function kindWords(kind: string): string {
  return KIND_WORDS[kind] ?? kind;
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
