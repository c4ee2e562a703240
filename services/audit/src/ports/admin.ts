/** Authenticates an admin caller from request headers (or gRPC metadata); throws AppError otherwise. */
export type AdminAuthorizer = (
  headers: Record<string, string | string[] | undefined>,
) => Promise<{ actor: string; keyId?: string }>;
