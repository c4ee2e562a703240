export { compileCondition } from './cel/compile-condition.js';
