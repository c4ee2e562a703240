export { AppError, type ErrorCode, isAppError } from './app-error.js';
export { grpcStatusOf, httpStatusOf, toAnthropicError, toGeminiError, toOpenAIError } from './mapping.js';
