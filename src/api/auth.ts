import { createHash, timingSafeEqual } from 'node:crypto';
import type { ApiConfig, ApiRole } from '../config/schema.ts';

/**
 * Who is calling: a bearer token of the configuration, found in constant time. Tokens are kept
 * as SHA-256 digests and every one is compared, so neither the length of a guess nor the place
 * of the matching token shows in the time taken. Callers see token names, never tokens.
 */

export interface Caller {
  /** The token's name from the configuration: what the audit log shows. */
  name: string;
  role: ApiRole;
}

const RANK: Record<ApiRole, number> = { viewer: 0, operator: 1, admin: 2 };

/** Whether `role` may do what `needed` may: admin ⊃ operator ⊃ viewer. */
export const allows = (role: ApiRole, needed: ApiRole): boolean => RANK[role] >= RANK[needed];

const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();

export class TokenTable {
  readonly #entries: { digest: Buffer; caller: Caller }[];

  constructor(tokens: ApiConfig['tokens']) {
    this.#entries = tokens.map((t) => ({ digest: digest(t.token_file.reveal()), caller: { name: t.name, role: t.role } }));
  }

  /** The caller an `Authorization` header names: `missing` without a bearer token, `invalid` for one that is not configured. */
  identify(header: string | undefined): Caller | 'missing' | 'invalid' {
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? '');
    if (!match?.[1]) return header === undefined || header.trim() === '' ? 'missing' : 'invalid';
    const presented = digest(match[1]);
    let found: Caller | undefined;
    for (const entry of this.#entries) {
      // No early exit: every entry is compared.
      if (timingSafeEqual(entry.digest, presented) && found === undefined) found = entry.caller;
    }
    return found ?? 'invalid';
  }
}
