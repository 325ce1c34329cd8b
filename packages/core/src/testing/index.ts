/**
 * `@fastattention/core/testing`: the conformance kit every backend's tests share (seeded inputs,
 * tolerances, comparison with the float64 reference) and the ready-made conformance suite a
 * plugin author runs in one call (`runConformance`, or `describeConformance` from
 * `@fastattention/core/testing/vitest`), and the op conformance suite of the execution contract
 * (`runOpConformance`).
 */
export * from './conformance.js';
export * from './kit.js';
export * from './op-cases.js';
export * from './ops.js';
export * from './paged.js';
