/**
 * Gemini function calls usually carry no id, and Gemini 3 attaches a `thoughtSignature` to function-call
 * parts that must be sent back with the history or the next request fails (4xx). The canonical model has
 * neither, so both travel inside the canonical tool-call id, which every client echoes back verbatim:
 *
 *   call_<seed>_<n>            a synthesized id (stable: derived from the response id or position)
 *   <id>__tsr_<signature>      a signature made only of [A-Za-z0-9_-], kept as is
 *   <id>__tsb_<base64url>      a standard base64 signature, stored url-safe and unpadded
 *
 * Ids stay within `^[a-zA-Z0-9_-]+$`, the pattern Anthropic requires of tool_use ids.
 * See https://ai.google.dev/gemini-api/docs/thought-signatures.
 */

const MARKER = /__ts([rb])_/;

export function synthesizeToolCallId(seed: string, index: number): string {
  const safe = seed.replace(/[^a-zA-Z0-9-]/g, '').slice(0, 40);
  return `call_${safe === '' ? 'gemini' : safe}_${index}`;
}

export function attachSignature(id: string, signature: string | undefined): string {
  if (signature === undefined || signature === '') return id;
  if (/^[A-Za-z0-9_-]+$/.test(signature)) return `${id}__tsr_${signature}`;
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(signature)) {
    return `${id}__tsb_${signature.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')}`;
  }
  // Not base64 at all: Gemini could not have produced it, so it is not worth carrying.
  return id;
}

export function splitToolCallId(id: string): { id: string; signature?: string } {
  const match = MARKER.exec(id);
  if (!match) return { id };
  const base = id.slice(0, match.index);
  const payload = id.slice(match.index + match[0].length);
  if (payload === '') return { id: base };
  if (match[1] === 'r') return { id: base, signature: payload };
  const standard = payload.replace(/-/g, '+').replace(/_/g, '/');
  return { id: base, signature: standard + '='.repeat((4 - (standard.length % 4)) % 4) };
}

/**
 * Google documents this value for function calls whose real signature is unknown (history written by
 * another model, or by the client); it passes Gemini 3's validation.
 */
export const SKIP_SIGNATURE_VALIDATION = 'skip_thought_signature_validator';

/** Gemini 1.x and 2.x do not validate signatures; everything newer (or unknown) gets the placeholder. */
export function requiresThoughtSignatures(model: string): boolean {
  return isGemini3OrLater(model);
}

/** Gemini 3 brought thought signatures on calls and `thinkingLevel`; unknown names count as newer. */
export function isGemini3OrLater(model: string): boolean {
  return !/^(models\/)?gemini-(1|2)([.-]|$)/.test(model);
}

/** A short, stable hash for ids when the upstream gave no response id (FNV-1a, 32 bits). */
export function stableHash(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0).toString(36);
}
