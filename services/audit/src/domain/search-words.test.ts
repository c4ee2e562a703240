import { describe, expect, it } from 'vitest';
import { searchQuery, searchWords } from './search-words.js';

describe('search words', () => {
  it('when an entry is split, then every string value gives its lowercased words, and keys, numbers and booleans none', () => {
    const entry = JSON.stringify({
      type: 'dev.flowloom.gateway.request.failed.v1',
      data: {
        errorMessage: 'Slow down, request 9002',
        model: 'gpt-4o-mini',
        tags: ['Über', 'naïve café'],
        latencyMs: 12345,
        stream: true,
        nested: { deeper: { path: 'openai/gpt-4o-mini' } },
      },
    });
    expect(searchWords(entry).sort()).toEqual(
      [
        'dev',
        'flowloom',
        'gateway',
        'request',
        'failed',
        'v1',
        'slow',
        'down',
        '9002',
        'gpt',
        '4o',
        'mini',
        'über',
        'naïve',
        'café',
        'openai',
      ].sort(),
    );
  });

  it('when a word carries combining marks, then they stay in it', () => {
    expect(searchWords(JSON.stringify({ a: 'नमस्ते दुनिया', b: 'cafe\u0301' }))).toEqual([
      'नमस्ते',
      'दुनिया',
      'cafe\u0301',
    ]);
  });

  it('when a string holds a UUID, then it is one word, lowercased, and the rest is split as usual', () => {
    const entry = JSON.stringify({
      subject: 'key/01A25184-FBC8-7000-8641-E490303F1739',
      note: 'retried 01a25185-271b-7001-8d3c-f4a65ce13916, twice',
    });
    expect(searchWords(entry).sort()).toEqual(
      [
        'key',
        '01a25184-fbc8-7000-8641-e490303f1739',
        'retried',
        '01a25185-271b-7001-8d3c-f4a65ce13916',
        'twice',
      ].sort(),
    );
  });

  it('when something only looks like a UUID inside a longer word, then it is split like the rest of the text', () => {
    expect(searchWords(JSON.stringify({ a: 'x01a25185-271b-7001-8d3c-f4a65ce13916' }))).toEqual([
      'x01a25185',
      '271b',
      '7001',
      '8d3c',
      'f4a65ce13916',
    ]);
    expect(searchWords(JSON.stringify({ a: '01a25185-271b-7001-8d3c-f4a65ce13916aa' }))).toEqual([
      '01a25185',
      '271b',
      '7001',
      '8d3c',
      'f4a65ce13916aa',
    ]);
  });

  it('when a word repeats, then it is listed once', () => {
    expect(searchWords(JSON.stringify({ a: 'chat chat', b: 'CHAT' }))).toEqual(['chat']);
  });

  it('when an entry is not JSON (tampered), then its whole text is split', () => {
    expect(searchWords('not json: Quokka')).toEqual(['not', 'json', 'quokka']);
  });

  it('when a word is too long for PostgreSQL, then it is left out and the rest kept', () => {
    const long = 'x'.repeat(3000);
    expect(searchWords(JSON.stringify({ a: `${long} short` }))).toEqual(['short']);
    const wide = 'é'.repeat(1100); // 2,200 bytes in UTF-8
    expect(searchWords(JSON.stringify({ a: `${wide} ok` }))).toEqual(['ok']);
  });

  it('when a query is split, then it asks for every word of it, quoted, as entries are split', () => {
    expect(searchQuery('Slow down, request 9002')).toBe("'slow' & 'down' & 'request' & '9002'");
    expect(searchQuery("x'; drop table audit_entries; --")).toBe(
      "'x' & 'drop' & 'table' & 'audit' & 'entries'",
    );
    expect(searchQuery(' -- !! ')).toBeUndefined();
  });

  it('when a query holds a UUID, then it asks for it whole or for its five pieces (entries indexed before it stayed whole)', () => {
    expect(searchQuery('Request 01A25185-271b-7001-8d3c-f4a65ce13916')).toBe(
      "('01a25185-271b-7001-8d3c-f4a65ce13916' | '01a25185' & '271b' & '7001' & '8d3c' & 'f4a65ce13916') & 'request'",
    );
  });
});
