/** The logging the app layer needs (pino's Logger satisfies it). */
export interface AuditLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export const silentLogger: AuditLogger = {
  info: () => {},
  warn: () => {},
  error: () => {},
};
