/** Types of bundle.mjs (plain JavaScript: it runs before any TypeScript loader). */
export function bundled(entry: string, dirs?: readonly string[]): Promise<string>;
