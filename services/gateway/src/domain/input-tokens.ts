import type { ChatRequest } from '@flowloom/providers';

/**
 * The most input tokens one image can cost on the providers FlowLoom speaks to (Anthropic ~1,600 after
 * its resize, OpenAI's patch-based models ~3,800 at most, Gemini 258 per 768-pixel tile), so a budget
 * reserves enough for every image without decoding it.
 */
export const IMAGE_TOKENS_BOUND = 4096;

/** What each message adds besides its content (role and separators), at most. */
const MESSAGE_OVERHEAD_TOKENS = 4;

/*
 * Text is counted in quarter tokens, one pass over its UTF-16 code units, nothing allocated. The weights
 * are upper bounds of what OpenAI's cl100k_base and o200k_base tokenizers give (byte-level BPE, like the
 * other providers'), measured on prose in many scripts and on this repository's code, JSON, YAML and Markdown:
 * - English words and spaces: 4 characters a token (cl100k counts about 5 in prose).
 * - Digits and punctuation: 3/4 of a token each (numbers split in groups of at most three; code and JSON
 *   are dense in symbols: ~2.5 characters a token in minified code).
 * - A switch between letters and digits, or from lower to upper case, half a token more: hex strings,
 *   UUIDs and identifiers split there (64 hex digits are 52 tokens).
 * - A code point outside ASCII: half a token per UTF-8 byte, so 1 for Latin accents, Cyrillic, Greek,
 *   Arabic and Hebrew (0.5-1.1 per letter in cl100k), 1.5 for CJK, kana, Hangul, Devanagari and Thai (1.0-1.4
 *   per character in cl100k, less in o200k), and a whole token per byte, 4, above the Basic Multilingual
 *   Plane (emoji: up to 3 tokens each).
 * Counted short: in cl100k only (o200k counts these scripts far lower), Hebrew (by about a tenth),
 * Burmese and Georgian (a quarter), Armenian, Ethiopic and rare CJK ideographs (about half: cl100k splits
 * them into single bytes); in both, random base64 and keys (about a quarter). A true bound for all would
 * be a token per UTF-8 byte: three times what common CJK text costs, and four times English.
 */
const QUARTERS_LETTER = 1;
const QUARTERS_DIGIT = 3;
const QUARTERS_SYMBOL = 3;
const QUARTERS_LINE = 2;
const QUARTERS_SWITCH = 2;
const QUARTERS_2_BYTES = 4;
const QUARTERS_3_BYTES = 6;
const QUARTERS_4_BYTES = 16;

const OTHER = 0;
const LOWER = 1;
const UPPER = 2;
const DIGIT = 3;

/** Quarter tokens `text` may cost at most (see above). */
export function textQuarterTokens(text: string): number {
  let quarters = 0;
  let previous = OTHER;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    let kind = OTHER;
    if (c >= 0x61 && c <= 0x7a) kind = LOWER;
    else if (c >= 0x41 && c <= 0x5a) kind = UPPER;
    else if (c >= 0x30 && c <= 0x39) kind = DIGIT;
    if (kind !== OTHER) {
      quarters += kind === DIGIT ? QUARTERS_DIGIT : QUARTERS_LETTER;
      // Upper to lower is how words start ("The"); every other change of kind splits a token.
      if (previous !== OTHER && kind !== previous && !(previous === UPPER && kind === LOWER))
        quarters += QUARTERS_SWITCH;
    } else if (c === 0x20) quarters += QUARTERS_LETTER;
    else if (c === 0x0a || c === 0x0d || c === 0x09) quarters += QUARTERS_LINE;
    else if (c < 0x80) quarters += QUARTERS_SYMBOL;
    else if (c < 0x800) quarters += QUARTERS_2_BYTES;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      // A surrogate pair: one code point of 4 UTF-8 bytes.
      const low = text.charCodeAt(i + 1);
      if (low >= 0xdc00 && low <= 0xdfff) i++;
      quarters += QUARTERS_4_BYTES;
    } else quarters += QUARTERS_3_BYTES;
    previous = kind;
  }
  return quarters;
}

/** Tokens `text` may cost at most, alone. */
export function textTokensBound(text: string): number {
  return Math.ceil(textQuarterTokens(text) / 4);
}

/**
 * The input a request sends, bounded from above (see the weights above): message text, tool definitions
 * (their JSON schemas are part of the prompt), the tool calls and reasoning of earlier turns, tool
 * results, a structured-output schema, plus 4 tokens per message and `IMAGE_TOKENS_BOUND` per image.
 */
export function inputTokensBound(request: ChatRequest): number {
  let quarters = 0;
  let images = 0;
  for (const tool of request.tools ?? [])
    quarters +=
      textQuarterTokens(tool.name) +
      textQuarterTokens(tool.description ?? '') +
      textQuarterTokens(JSON.stringify(tool.parameters));
  if (request.responseFormat?.type === 'json_schema')
    quarters += textQuarterTokens(JSON.stringify(request.responseFormat.schema));
  for (const m of request.messages) {
    if (m.role === 'user') {
      for (const p of m.content) {
        if (p.type === 'text') quarters += textQuarterTokens(p.text);
        else images++;
      }
    } else if (m.role === 'assistant') {
      quarters += textQuarterTokens(m.content ?? '');
      for (const call of m.toolCalls ?? [])
        quarters += textQuarterTokens(call.name) + textQuarterTokens(call.arguments);
      for (const block of m.reasoning ?? [])
        quarters += textQuarterTokens(block.type === 'thinking' ? block.text : block.data);
    } else quarters += textQuarterTokens(m.content);
  }
  return (
    Math.ceil(quarters / 4) + images * IMAGE_TOKENS_BOUND + request.messages.length * MESSAGE_OVERHEAD_TOKENS
  );
}
