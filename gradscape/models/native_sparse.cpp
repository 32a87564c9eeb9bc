// Native CPU kernels for gradscape's spike-sparse products (gradscape/models/native_sparse.py says
// what they compute and how they are built). Compiled once per dtype with GRADSCAPE_SCALAR defined as
// float or double, by Inductor's C++ code cache with its flags (-O3, the CPU's vector ISA, OpenMP;
// note -fno-tree-loop-vectorize: loops that should be vector code are written with vector types).
#include <array>
#include <cstdint>
#include <type_traits>
#include <vector>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

typedef GRADSCAPE_SCALAR scalar_t;  // defined by the build: float or double
constexpr int64_t LANES = 32 / sizeof(scalar_t);
// GCC/Clang vector extension: 256 bits, unaligned loads and stores (element alignment)
typedef scalar_t vec_t __attribute__((vector_size(32), aligned(sizeof(scalar_t)), may_alias));
typedef scalar_t wide_t __attribute__((vector_size(64), aligned(sizeof(scalar_t)), may_alias));
constexpr int64_t WIDE = 64 / sizeof(scalar_t);  // entries of a wide_t; the gather's table rows pad to it
constexpr int BLOCK = 8;  // vectors of the scatter's row block kept in registers
constexpr int64_t WIDTH = LANES * BLOCK;
constexpr int64_t PARALLEL_MIN = 1 << 17;  // multiply-adds below which one thread does the step

// For an 8-bit mask m: the positions of its set bits, 4 bits each, lowest first.
static constexpr std::array<uint32_t, 256> make_lut() {
    std::array<uint32_t, 256> lut{};
    for (int m = 0; m < 256; ++m) {
        int k = 0;
        for (int i = 0; i < 8; ++i)
            if (m >> i & 1) lut[m] |= (uint32_t)i << (4 * k++);
    }
    return lut;
}
static constexpr std::array<uint32_t, 256> LUT = make_lut();

// Column indices of the nonzeros of zr[0, h) (NaN included) into idx (h + 8 slots), ascending.
static inline int64_t find_nonzeros(const scalar_t* zr, int64_t h, int32_t* idx) {
    int64_t n = 0, j = 0;
#if defined(__AVX2__)
    // 8 (float) or 4 (double) entries per compare: the mask's set bits, looked up, are the offsets
    // of the nonzeros; all 8 slots are written and n advances by the count (no branch per entry).
    const __m256i shifts = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
    const __m256i nibble = _mm256_set1_epi32(15);
    for (; j + LANES <= h; j += LANES) {
        unsigned m;
        if constexpr (sizeof(scalar_t) == 4) {
            const __m256 x = _mm256_loadu_ps(reinterpret_cast<const float*>(zr) + j);
            m = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_NEQ_UQ));
        } else {
            const __m256d x = _mm256_loadu_pd(reinterpret_cast<const double*>(zr) + j);
            m = (unsigned)_mm256_movemask_pd(_mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_NEQ_UQ));
        }
        const __m256i at = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)LUT[m]), shifts), nibble);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx + n), _mm256_add_epi32(at, _mm256_set1_epi32((int)j)));
        n += __builtin_popcount(m);
    }
#endif
    for (; j < h; ++j) {
        idx[n] = (int32_t)j;
        n += zr[j] != 0;
    }
    return n;
}

typedef std::conditional_t<sizeof(scalar_t) == 4, int32_t, int64_t> lane_int;
typedef lane_int ivec_t __attribute__((vector_size(32)));

static inline int64_t count_nonzeros(const scalar_t* zr, int64_t h) {
    // written as vectors: Inductor builds with -fno-tree-loop-vectorize
    ivec_t acc = {};
    int64_t j = 0;
    for (; j + LANES <= h; j += LANES) acc -= *reinterpret_cast<const vec_t*>(zr + j) != 0;  // true is -1
    int64_t n = 0;
    for (int k = 0; k < LANES; ++k) n += acc[k];
    for (; j < h; ++j) n += zr[j] != 0;
    return n;
}

// o[0, N) = sum_i v[i] * table[c[i], :] for a table of row stride ld (ld >= N rounded up to WIDE
// entries, the padding readable); with ONES every v[i] is 1 and the sum skips the multiplies.
// A 64-float block of o stays in four 512-bit registers (two 256-bit halves each where the CPU has
// no AVX-512) while the rows are added; the row addresses are computed once, not once per block.
template <bool ONES>
static inline void row_sum(const scalar_t* table, int64_t N, int64_t ld, const int32_t* c, const scalar_t* v,
                           int64_t n, const scalar_t** rp, scalar_t* o) {
    for (int64_t i = 0; i < n; ++i) rp[i] = table + (int64_t)c[i] * ld;
    int64_t c0 = 0;
    for (; c0 + 4 * WIDE <= N; c0 += 4 * WIDE) {
        wide_t a0 = {}, a1 = {}, a2 = {}, a3 = {};
        for (int64_t i = 0; i < n; ++i) {
            const wide_t* r = reinterpret_cast<const wide_t*>(rp[i] + c0);
            if (ONES) {
                a0 += r[0]; a1 += r[1]; a2 += r[2]; a3 += r[3];
            } else {
                a0 += v[i] * r[0]; a1 += v[i] * r[1]; a2 += v[i] * r[2]; a3 += v[i] * r[3];
            }
        }
        wide_t* out = reinterpret_cast<wide_t*>(o + c0);
        out[0] = a0; out[1] = a1; out[2] = a2; out[3] = a3;
    }
    for (; c0 < N; c0 += WIDE) {  // the padding makes every row's last vector whole
        wide_t a = {};
        for (int64_t i = 0; i < n; ++i) {
            const wide_t r = *reinterpret_cast<const wide_t*>(rp[i] + c0);
            a += ONES ? r : v[i] * r;
        }
        if (c0 + WIDE <= N) {
            *reinterpret_cast<wide_t*>(o + c0) = a;
        } else {
            for (int64_t k = 0; k < N - c0; ++k) o[c0 + k] = a[k];
        }
    }
}

static void gather(const scalar_t* z, const scalar_t* table, scalar_t* out, int32_t* cols, scalar_t* vals,
                   int64_t* offsets, double* meta, int64_t B, int64_t H, int64_t N, int64_t ld, int64_t pos,
                   int64_t max_nnz) {
    int64_t nnz = 0;
    for (int64_t b = 0; b < B; ++b) {
        offsets[b] = pos + nnz;
        nnz += count_nonzeros(z + b * H, H);
    }
    offsets[B] = pos + nnz;
    meta[0] = (double)nnz;
    meta[1] = 0.0;
    if (nnz > max_nnz) return;
    double total = 0.0;
#pragma omp parallel reduction(+ : total) if (nnz * N > PARALLEL_MIN)
    {
        std::vector<int32_t> idx(H + 8);
        std::vector<const scalar_t*> rp(H);
#pragma omp for schedule(static)
        for (int64_t b = 0; b < B; ++b) {
            const scalar_t* zr = z + b * H;
            int64_t n = find_nonzeros(zr, H, idx.data());
            int32_t* c = cols + offsets[b];
            scalar_t* v = vals + offsets[b];
            bool ones = true;
            double sum = 0.0;
            for (int64_t i = 0; i < n; ++i) {
                c[i] = idx[i];
                v[i] = zr[idx[i]];
                ones &= v[i] == 1;
                sum += (double)v[i];
            }
            total += sum;
            if (ones) row_sum<true>(table, N, ld, c, v, n, rp.data(), out + b * N);
            else row_sum<false>(table, N, ld, c, v, n, rp.data(), out + b * N);
        }
    }
    meta[1] = total;
}

// table[j, :] += sum over the nonzeros (b, j) of z: z[b, j] * g[b, :]. The nonzeros are put in column
// order first (a counting sort), so each row j of the table is one register-blocked sum over the rows
// of g, and threads own whole rows of it (column blocks would share cache lines between threads).
static void scatter(const scalar_t* g, scalar_t* table, const int32_t* cols, const scalar_t* vals,
                    const int64_t* offsets, int64_t B, int64_t H, int64_t N) {
    const int64_t base = offsets[0], nnz = offsets[B] - offsets[0];
    std::vector<int64_t> start(H + 1, 0);
    for (int64_t i = 0; i < nnz; ++i) ++start[cols[base + i] + 1];
    for (int64_t j = 0; j < H; ++j) start[j + 1] += start[j];
    std::vector<int32_t> rows(nnz);
    std::vector<scalar_t> vs(nnz);
    std::vector<int64_t> at(start.begin(), start.end() - 1);
    bool ones = true;
    for (int64_t b = 0; b < B; ++b)
        for (int64_t i = offsets[b]; i < offsets[b + 1]; ++i) {
            const int64_t k = at[cols[i]]++;
            rows[k] = (int32_t)b;
            vs[k] = vals[i];
            ones &= vals[i] == 1;
        }
#pragma omp parallel for schedule(static) if (nnz * N > PARALLEL_MIN)
    for (int64_t j = 0; j < H; ++j) {
        const int64_t lo = start[j], n = start[j + 1] - lo;
        if (n == 0) continue;
        const int32_t* r = rows.data() + lo;
        const scalar_t* v = vs.data() + lo;
        scalar_t* d = table + j * N;
        int64_t c0 = 0;
        for (; c0 + WIDTH <= N; c0 += WIDTH) {
            vec_t acc[BLOCK];
            for (int k = 0; k < BLOCK; ++k) acc[k] = reinterpret_cast<const vec_t*>(d + c0)[k];
            for (int64_t i = 0; i < n; ++i) {
                const vec_t* gr = reinterpret_cast<const vec_t*>(g + (int64_t)r[i] * N + c0);
                if (ones) for (int k = 0; k < BLOCK; ++k) acc[k] += gr[k];
                else for (int k = 0; k < BLOCK; ++k) acc[k] += v[i] * gr[k];
            }
            for (int k = 0; k < BLOCK; ++k) reinterpret_cast<vec_t*>(d + c0)[k] = acc[k];
        }
        for (; c0 < N; ++c0) {
            scalar_t acc = d[c0];
            for (int64_t i = 0; i < n; ++i) {
                const scalar_t x = g[(int64_t)r[i] * N + c0];
                acc += ones ? x : v[i] * x;
            }
            d[c0] = acc;
        }
    }
}

extern "C" void kernel(int64_t op, const scalar_t* zg, scalar_t* table, scalar_t* out, int32_t* cols,
                       scalar_t* vals, int64_t* offsets, double* meta, int64_t B, int64_t H, int64_t N,
                       int64_t ld, int64_t pos, int64_t max_nnz) {
    if (op == 0) gather(zg, table, out, cols, vals, offsets, meta, B, H, N, ld, pos, max_nnz);
    else scatter(zg, table, cols, vals, offsets, B, H, N);
}
