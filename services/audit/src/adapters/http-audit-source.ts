import type { AuditActivity, AuditSource } from '../ports/audit-source.js';
import type {
  BundlePage,
  CheckpointRecord,
  EntryFilter,
  LedgerStats,
  NodeTile,
} from '../ports/ledger-store.js';

interface CheckpointJson {
  id: number;
  treeSize: number;
  rootHash: string;
  keyId: string;
  issuedAt: string;
  checkpoint: string;
}

const bytes = (base64: string): Uint8Array => new Uint8Array(Buffer.from(base64, 'base64'));

function checkpointOf(json: CheckpointJson): CheckpointRecord {
  return {
    id: json.id,
    treeSize: json.treeSize,
    rootHash: bytes(json.rootHash),
    keyId: json.keyId,
    note: json.checkpoint,
    issuedAt: new Date(json.issuedAt),
  };
}

/** An entry filter as the audit API's query parameters (`GET /api/v1/audit/entries`, exports). */
export function filterParams(filter: EntryFilter | undefined, params: URLSearchParams): void {
  if (!filter) return;
  const set = (name: string, value: string | Date | undefined): void => {
    if (value !== undefined && value !== '')
      params.set(name, value instanceof Date ? value.toISOString() : value);
  };
  set('from', filter.from);
  set('to', filter.to);
  set('type', filter.type);
  set('actor', filter.actor);
  set('key', filter.keyId);
  set('project', filter.project);
  set('job', filter.job);
  set('outcome', filter.outcome);
  set('q', filter.text);
}

/**
 * A running platform's audit API as an AuditSource, for the CLI. It serves raw data only: the
 * verifier recomputes everything and trusts nothing but the keys.
 */
export class HttpAuditSource implements AuditSource {
  readonly description: string;
  private info: Promise<{ origin: string; treeSize: number }> | undefined;

  constructor(
    private readonly baseUrl: string,
    private readonly apiKey: string,
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.description = `FlowLoom at ${this.baseUrl}`;
  }

  private async call<T>(
    method: string,
    path: string,
    body?: unknown,
    accept = 'application/json',
  ): Promise<T> {
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.apiKey}`,
          accept,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch (error) {
      throw new Error(
        `Cannot reach FlowLoom at ${this.baseUrl} (${(error as Error).message}). Is it running? Set FLOWLOOM_URL otherwise.`,
      );
    }
    const text = await response.text();
    if (!response.ok) {
      let message = text;
      try {
        message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? text;
      } catch {
        // keep text
      }
      throw new Error(`${method} ${path.split('?')[0]} failed (${response.status}): ${message}`);
    }
    return (accept === 'application/json' ? JSON.parse(text) : text) as T;
  }

  private loadInfo(): Promise<{ origin: string; treeSize: number }> {
    this.info ??= this.call('GET', '/api/v1/audit/info');
    return this.info;
  }

  async origin(): Promise<string> {
    return (await this.loadInfo()).origin;
  }

  async verifierKeys(): Promise<string[]> {
    const text = await this.call<string>('GET', '/api/v1/audit/public-key', undefined, 'text/plain');
    return text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
  }

  async latestCheckpoint(): Promise<CheckpointRecord | undefined> {
    return checkpointOf(await this.call<CheckpointJson>('GET', '/api/v1/audit/checkpoints/latest'));
  }

  async checkpoints(afterId: number, limit: number): Promise<CheckpointRecord[]> {
    const page = await this.call<{ data: CheckpointJson[] }>(
      'GET',
      `/api/v1/audit/checkpoints?after=${afterId}&limit=${Math.min(limit, 1000)}`,
    );
    return page.data.map(checkpointOf);
  }

  async issueCheckpoint(): Promise<CheckpointRecord> {
    return checkpointOf(await this.call<CheckpointJson>('POST', '/api/v1/audit/checkpoints', {}));
  }

  async treeSize(): Promise<number> {
    this.info = undefined;
    return (await this.loadInfo()).treeSize;
  }

  async bundlePage(start: number, end: number, filter?: EntryFilter): Promise<BundlePage> {
    const params = new URLSearchParams({ start: String(start), end: String(end) });
    filterParams(filter, params);
    const page = await this.call<{
      start: number;
      lines: string[];
      indexes?: number[];
      leafHashes: string;
      matched: number[];
      pruned: number;
    }>('GET', `/api/v1/audit/log/entries?${params}`);
    return {
      start: page.start,
      lines: page.lines,
      indexes: page.indexes ?? page.lines.map((_, i) => start + i),
      leafHashes: bytes(page.leafHashes),
      matched: page.matched,
      pruned: page.pruned,
    };
  }

  async tiles(start: number, end: number): Promise<NodeTile[]> {
    const page = await this.call<{ tiles: Array<{ startSize: number; endSize: number; hashes: string }> }>(
      'GET',
      `/api/v1/audit/log/tiles?start=${start}&end=${end}`,
    );
    return page.tiles.map((t) => ({ startSize: t.startSize, endSize: t.endSize, hashes: bytes(t.hashes) }));
  }

  async consistencyProof(size1: number, size2: number): Promise<Uint8Array[]> {
    const result = await this.call<{ proof: string[] }>(
      'GET',
      `/api/v1/audit/proofs/consistency?from=${size1}&to=${size2}`,
    );
    return result.proof.map(bytes);
  }

  async inclusionProofs(indexes: readonly number[], treeSize: number): Promise<Uint8Array[][]> {
    const result = await this.call<{ proofs: Array<{ index: number; proof: string[] }> }>(
      'POST',
      '/api/v1/audit/proofs/inclusion',
      { indexes, treeSize },
    );
    return result.proofs.map((p) => p.proof.map(bytes));
  }

  async stats(): Promise<LedgerStats> {
    const raw = await this.call<LedgerStats>('GET', '/api/v1/audit/stats');
    return raw;
  }

  /** The server attributes the activity to the key used; `actor` is ignored. */
  async record(activity: AuditActivity, _actor: string): Promise<void> {
    await this.call('POST', '/api/v1/audit/activity', activity);
  }

  /** A compliance report computed (and recorded) by the server. */
  report<T>(standard: string): Promise<T> {
    return this.call<T>('GET', `/api/v1/audit/reports/${encodeURIComponent(standard)}`);
  }
}
