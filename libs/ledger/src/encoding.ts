// Signed notes and bundles must have exactly one valid encoding, otherwise two different byte
// strings could carry the same signed meaning. Node's decoders silently skip bad characters, so
// decoding is strict here and the result re-encoded to prove canonical form.

const HEX = /^(?:[0-9a-f]{2})*$/;

/** Standard (RFC 4648 §4) padded base64, canonical form only; undefined when invalid. */
export function decodeBase64(text: string): Uint8Array | undefined {
  // Node's decoder skips characters it does not know and accepts base64url, so the canonical
  // re-encoding must reproduce the input exactly; that alone rejects every other spelling.
  if (text.length % 4 !== 0) return undefined;
  const bytes = Buffer.from(text, 'base64');
  if (bytes.toString('base64') !== text) return undefined;
  return bytes;
}

/** Lowercase hex only; undefined when invalid. */
export function decodeHex(text: string): Uint8Array | undefined {
  if (!HEX.test(text)) return undefined;
  return Buffer.from(text, 'hex');
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

/** Strict UTF-8 decoding; undefined for invalid byte sequences. */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    return undefined;
  }
}

export function encodeUtf8(text: string): Uint8Array {
  return utf8Encoder.encode(text);
}
