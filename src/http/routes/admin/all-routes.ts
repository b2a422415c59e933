/**
 * Importing this module registers every admin route module's OpenAPI operations (modules that add
 * operations beyond openapi.ts's own list register them when imported).
 */
import './index.js';
