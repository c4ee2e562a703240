import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A flowloom.yaml in `work` pricing the local model at `pricePerMillion` (input and output) with one
 * project budget; returns its path.
 */
export function budgetConfig(
  work: string,
  pricePerMillion: number,
  budget: { project: string; period: 'total' | 'month'; limitUsd: number },
): string {
  const config = join(work, 'flowloom.yaml');
  writeFileSync(
    config,
    [
      'prices:',
      `  flowloom-local: { input: ${pricePerMillion}, output: ${pricePerMillion} }`,
      'budgets:',
      `  - { scope: project, id: ${budget.project}, period: ${budget.period}, limitUsd: ${budget.limitUsd} }`,
      '',
    ].join('\n'),
  );
  return config;
}
