/**
 * flowloom.yaml for benchmarks that measure with budgets and rate limits on: every request reserves
 * against a key budget and settles it, under limits set high enough never to refuse.
 */
export const BENCH_LIMITS_YAML = [
  'budgets:',
  '  - { scope: key, period: month, limitUsd: 1000000 }',
  'rateLimits:',
  '  - { scope: key, requestsPerMinute: 10000000, tokensPerMinute: 1000000000 }',
  '',
].join('\n');
