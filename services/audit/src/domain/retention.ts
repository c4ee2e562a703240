/** A retention rule from configuration: how many days entries of matching types keep their content. */
export interface RetentionRule {
  /** An exact event type, a prefix ending in `*`, or `*` for every type. */
  readonly pattern: string;
  readonly days: number;
}

export function retentionRules(config: Readonly<Record<string, number>>): RetentionRule[] {
  return Object.entries(config).map(([pattern, days]) => ({ pattern, days }));
}

function matches(pattern: string, type: string): boolean {
  return pattern.endsWith('*') ? type.startsWith(pattern.slice(0, -1)) : pattern === type;
}

/** The rule for a type: an exact match, else the longest matching prefix; undefined = keep forever. */
export function ruleFor(type: string, rules: readonly RetentionRule[]): RetentionRule | undefined {
  let best: RetentionRule | undefined;
  for (const rule of rules) {
    if (!matches(rule.pattern, type)) continue;
    if (!rule.pattern.endsWith('*')) return rule;
    if (best === undefined || rule.pattern.length > best.pattern.length) best = rule;
  }
  return best;
}

/** Entries of `type` older than this lose their content; undefined when the type is kept forever. */
export function cutoffFor(type: string, rules: readonly RetentionRule[], now: Date): Date | undefined {
  const rule = ruleFor(type, rules);
  return rule === undefined ? undefined : new Date(now.getTime() - rule.days * 86_400_000);
}
