/** JSON-RPC 2.0 over HTTP POST / to the node that served the page (same origin; docs/rpc.md, docs/page.md). */

export const RPC_PATH = '/';

/** A JSON-RPC error object from the node, or a transport failure (code 0). */
export class RpcError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
    this.name = 'RpcError';
  }
}

let nextId = 1;

/** Call `method` with named `params`; the result, or RpcError. */
export async function call<T>(method: string, params: Record<string, unknown>): Promise<T> {
  let response: Response;
  try {
    response = await fetch(RPC_PATH, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: nextId++, method, params }),
    });
  } catch (error) {
    throw new RpcError(0, `cannot reach the node (${(error as Error).message})`);
  }
  let body: any;
  try {
    body = await response.json();
  } catch {
    throw new RpcError(0, `the node answered HTTP ${response.status} without JSON`);
  }
  if (body && typeof body === 'object' && body.error) {
    throw new RpcError(Number(body.error.code) || 0, String(body.error.message ?? 'error'));
  }
  if (!body || typeof body !== 'object' || !('result' in body)) {
    throw new RpcError(0, 'the node sent a reply that is not JSON-RPC');
  }
  return body.result as T;
}
