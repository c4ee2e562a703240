export { AppError, type ErrorCode, isAppError } from './app-error.js';
export { fromHttpFrameworkError } from './http-framework.js';
export {
  errorHeaders,
  grpcStatusOf,
  httpStatusOf,
  toAdminHttpError,
  toAnthropicError,
  toGeminiError,
  toOpenAIError,
} from './mapping.js';
export { errorResponses, errorResponsesWithNotFound, openApiErrorComponents } from './openapi.js';
export { parseInput } from './parse-input.js';
