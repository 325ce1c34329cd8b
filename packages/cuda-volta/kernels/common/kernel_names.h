// Kernel symbol names, made from a configuration table row (kernels/<path>/configs.h). Every table
// has the same row shape, X(role, HD, BM, BN, WARPS, STAGES), and this file is the only place that
// spells a name: the kernel files define their entry points with FA_KERNEL_SYMBOL and the addon
// reports FA_KERNEL_SYMBOL_STR for the same rows, so TypeScript and the volta check read the names
// instead of rebuilding them.
#pragma once

// The configuration's name inside its path and role (the planner's `config`), e.g. hd128_128x64w4s2.
#define FA_CONFIG_NAME_STR(HD, BM, BN, W, S) "hd" #HD "_" #BM "x" #BN "w" #W "s" #S

// fa_<path>_<role>_<dtype>_hd<HD>_<BM>x<BN>w<W>s<S>, e.g. fa_ampere_prefill_f16_hd128_128x64w4s2.
#define FA_KERNEL_SYMBOL(path, role, DT, HD, BM, BN, W, S) fa_##path##_##role##_##DT##_hd##HD##_##BM##x##BN##w##W##s##S
#define FA_KERNEL_SYMBOL_STR(path, role, DT, HD, BM, BN, W, S) \
  "fa_" #path "_" #role "_" #DT "_" FA_CONFIG_NAME_STR(HD, BM, BN, W, S)
// The same configuration's paged-KV entry point (the body's PAGED instantiation): <symbol>_paged.
#define FA_KERNEL_SYMBOL_PAGED(path, role, DT, HD, BM, BN, W, S) \
  fa_##path##_##role##_##DT##_hd##HD##_##BM##x##BN##w##W##s##S##_paged
#define FA_KERNEL_SYMBOL_PAGED_STR(path, role, DT, HD, BM, BN, W, S) FA_KERNEL_SYMBOL_STR(path, role, DT, HD, BM, BN, W, S) "_paged"
