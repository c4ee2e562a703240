/** Authenticates an admin caller from request headers (or gRPC metadata); throws AppError otherwise. */
export type AdminAuthorizer = (
  headers: Record<string, string | string[] | undefined>,
  /** Identifies the attempt in the login events (the gateway's authorizer records them). */
  request?: { requestId?: string; sourceIp?: string },
) => Promise<{ actor: string; keyId?: string }>;
