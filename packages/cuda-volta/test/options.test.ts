// createBackend's options are checked before any native code runs, so these promises hold on any
// machine, GPU or not: a bad `tuning` field is INVALID_INPUT naming it (here, without the check,
// the same call would be UNAVAILABLE: no device). The environment variables are the defaults.
import { describe, expect, it } from 'vitest';
import { createBackend } from '../src/index.js';
import { resolveTuning } from '../src/options.js';

describe('createBackend({ tuning }) validation', () => {
  const rejects = (tuning: unknown, field: string) =>
    expect(createBackend({ tuning } as never)).rejects.toMatchObject({ code: 'INVALID_INPUT', field });

  it('rejects a tuning that is not an object', async () => {
    for (const tuning of [null, 5, 'fast', [], true]) await rejects(tuning, 'tuning');
  });

  it('rejects fusedCombine and pdl that are not booleans', async () => {
    for (const value of [0, 1, 'false', null, {}]) {
      await rejects({ fusedCombine: value }, 'tuning.fusedCombine');
      await rejects({ pdl: value }, 'tuning.pdl');
    }
  });

  it('rejects a decodeConfig or prefillConfig that is not a non-empty string', async () => {
    for (const value of ['', 128, null, ['hd128_16x64w4s3']]) {
      await rejects({ decodeConfig: value }, 'tuning.decodeConfig');
      await rejects({ prefillConfig: value }, 'tuning.prefillConfig');
    }
  });

  it('rejects a decodeSplit that is not an integer >= 1', async () => {
    for (const value of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '4', null]) {
      await rejects({ decodeSplit: value }, 'tuning.decodeSplit');
    }
  });

  it('names the field whose getter throws', async () => {
    const tuning = {
      get pdl(): boolean {
        throw new Error('no');
      },
    };
    await rejects(tuning, 'tuning.pdl');
  });

  it('says what it got', async () => {
    await expect(createBackend({ tuning: { decodeSplit: 0 } })).rejects.toThrow(
      'tuning.decodeSplit: expected an integer >= 1, got 0',
    );
  });
});

describe('tuning defaults', () => {
  const none = {};

  it('are the fast choices when neither the option nor the environment says otherwise', () => {
    expect(resolveTuning(undefined, none)).toEqual({
      fusedCombine: true,
      pdl: true,
      decodeConfig: undefined,
      decodeSplit: undefined,
      decodeConfigGiven: false,
      prefillConfig: undefined,
      prefillConfigGiven: false,
    });
    expect(resolveTuning({}, none)).toEqual(resolveTuning(undefined, none));
  });

  it('come from the FASTATTN_CUDA_* variables where the option leaves a field out', () => {
    const env = {
      FASTATTN_CUDA_FUSED_COMBINE: '0',
      FASTATTN_CUDA_PDL: '0',
      FASTATTN_CUDA_DECODE_CONFIG: 'hd128_16x64w4s3',
      FASTATTN_CUDA_PREFILL_CONFIG: 'hd128_128x128w12s2',
      FASTATTN_CUDA_DECODE_SPLIT: '24',
    };
    expect(resolveTuning(undefined, env)).toEqual({
      fusedCombine: false,
      pdl: false,
      decodeConfig: 'hd128_16x64w4s3',
      decodeSplit: 24,
      decodeConfigGiven: false,
      prefillConfig: 'hd128_128x128w12s2',
      prefillConfigGiven: false,
    });
  });

  it('keep the variables meaning: only 0 turns a feature off; a split count that is not an integer >= 1 is ignored', () => {
    const env = {
      FASTATTN_CUDA_FUSED_COMBINE: '1',
      FASTATTN_CUDA_PDL: 'off',
      FASTATTN_CUDA_DECODE_SPLIT: 'x',
    };
    expect(resolveTuning(undefined, env)).toMatchObject({
      fusedCombine: true,
      pdl: true,
      decodeSplit: undefined,
    });
    expect(resolveTuning(undefined, { FASTATTN_CUDA_DECODE_SPLIT: '0' }).decodeSplit).toBeUndefined();
    expect(resolveTuning(undefined, { FASTATTN_CUDA_DECODE_CONFIG: '' }).decodeConfig).toBeUndefined();
  });

  it('give way to the option', () => {
    const env = {
      FASTATTN_CUDA_FUSED_COMBINE: '0',
      FASTATTN_CUDA_PDL: '0',
      FASTATTN_CUDA_DECODE_SPLIT: '24',
    };
    expect(
      resolveTuning(
        { fusedCombine: true, pdl: true, decodeSplit: 3, decodeConfig: 'a', prefillConfig: 'b' },
        env,
      ),
    ).toEqual({
      fusedCombine: true,
      pdl: true,
      decodeConfig: 'a',
      decodeSplit: 3,
      decodeConfigGiven: true,
      prefillConfig: 'b',
      prefillConfigGiven: true,
    });
  });
});
