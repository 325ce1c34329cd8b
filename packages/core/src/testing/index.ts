/**
 * `@fastattention/core/testing`: the conformance kit every backend's tests share (seeded inputs,
 * tolerances, comparison with the float64 reference) and the ready-made conformance suite a
 * plugin author runs in one call (`runConformance`, or `describeConformance` from
 * `@fastattention/core/testing/vitest`).
 */
export * from './conformance.js';
export * from './kit.js';
export * from './paged.js';
