import { AppError } from './app-error.js';

/** What a schema's `safeParse` answers (zod's shape), so this lib needs no schema library of its own. */
type Parsed<T> =
  | { readonly success: true; readonly data: T }
  | {
      readonly success: false;
      readonly error: {
        readonly issues: ReadonlyArray<{ readonly path: readonly PropertyKey[]; readonly message: string }>;
      };
    };

/**
 * Input checked against a schema, or an `invalid_request` AppError naming the first bad field (as
 * `param` and in the message), which every API maps to its own format. An absent value is `{}`.
 */
export function parseInput<T>(schema: { safeParse(value: unknown): Parsed<T> }, value: unknown): T {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const param = issue?.path.map(String).join('.') || undefined;
  throw new AppError(
    'invalid_request',
    `${param ? `${param}: ` : ''}${issue?.message ?? 'invalid'}`,
    param ? { param } : {},
  );
}
