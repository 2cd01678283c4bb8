// The graph as a file holds it: its layout, its records and upper store as contiguous spans for
// writing, and the opening of saved spans, copied after validation or viewed in place.
#include "hnsw_internal.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "saved records are the in-memory bytes; files are little-endian");

void nn_hnsw_get_layout(const nn_hnsw *h, nn_hnsw_layout *out) {
    *out = (nn_hnsw_layout){
        .dim = (uint32_t)h->dim,
        .metric = (uint32_t)h->params.metric,
        .m = (uint32_t)h->m,
        .m0 = (uint32_t)h->m0,
        .ef_construction = (uint32_t)h->params.ef_construction,
        .keep_pruned = h->params.keep_pruned,
        .seed = h->params.seed,
        .rng = h->rng,
        .count = nn_hnsw_count(h),
        .removed = nn_hnsw_removed_count(h),
        .entry = atomic_load_explicit(&((nn_hnsw *)h)->entry, memory_order_acquire),
        .record_bytes = h->record_bytes,
        .header_offset = h->header_offset,
        .upper_words = h->upper_words,
    };
}

const void *nn_hnsw_records(const nn_hnsw *h, size_t first, size_t *n) {
    size_t count = nn_hnsw_count(h);
    if (first >= count) return NULL;
    size_t in_block = NN_BLOCK_NODES - (first & (NN_BLOCK_NODES - 1));
    *n = count - first < in_block ? count - first : in_block;
    return nn_record(h, nn_blocks_now(h), (uint32_t)first);
}

const uint32_t *nn_hnsw_upper_words(const nn_hnsw *h, uint64_t first, uint64_t *n) {
    if (first >= h->upper_words) return NULL;
    size_t k = nn_upper_segment(first);
    uint64_t end = nn_upper_segment_start(k) + nn_upper_segment_words(k);
    if (end > h->upper_words) end = h->upper_words;
    *n = end - first;
    return (const uint32_t *)(h->upper[k] + (first - nn_upper_segment_start(k)));
}


// ---------------------------------------------------------------------------------------------
// Validation, before anything is allocated or any link followed.

static bool fail(nn_corruption *why, nn_corruption_kind kind, uint64_t node) {
    *why = (nn_corruption){kind, node};
    return false;
}

static bool layout_valid(const nn_hnsw_layout *l, const void *records, const uint32_t *upper,
                         nn_corruption *why) {
    size_t header_offset = ((size_t)l->dim * sizeof(float) + 7) & ~(size_t)7;
    size_t record_bytes = (header_offset + sizeof(nn_node) + (size_t)l->m0 * sizeof(uint32_t) + 63) & ~(size_t)63;
    bool ok = l->dim >= 1 && l->dim <= (1u << 20) && l->metric < NN_METRIC_COUNT && l->m >= 2 &&
              l->m <= 1024 && l->m0 == 2 * l->m && l->ef_construction >= 1 && l->keep_pruned <= 1 &&
              l->header_offset == header_offset && l->record_bytes == record_bytes &&
              l->count < UINT32_MAX && l->removed <= l->count &&
              l->upper_words <= nn_upper_segment_start(NN_UPPER_SEGMENTS - 1) &&
              (l->count == 0 || records) && (l->upper_words == 0 || upper) &&
              ((uintptr_t)records & 7) == 0 && ((uintptr_t)upper & 3) == 0;
    if (!ok) return fail(why, NN_CORRUPT_LAYOUT, 0);
    if ((l->count == 0) != (l->entry == NN_NO_ENTRY)) return fail(why, NN_CORRUPT_ENTRY, 0);
    if (l->count == 0) return true;
    uint64_t node = (uint32_t)l->entry, level = l->entry >> 32;
    if (node >= l->count || level > NN_MAX_LEVEL) return fail(why, NN_CORRUPT_ENTRY, node);
    const nn_node *header = (const nn_node *)((const char *)records + node * l->record_bytes + l->header_offset);
    if (header->level != level) return fail(why, NN_CORRUPT_ENTRY, node);
    return true;
}

static bool links_valid(const uint32_t *links, uint32_t n, uint32_t cap, uint64_t node, uint64_t count,
                        nn_corruption *why) {
    if (n > cap) return fail(why, NN_CORRUPT_LINK_COUNT, node);
    for (uint32_t i = 0; i < n; i++)
        if (links[i] >= count || links[i] == node) return fail(why, NN_CORRUPT_LINK, node);
    return true;
}

static bool records_valid(const nn_hnsw_layout *l, const char *records, const uint32_t *upper,
                          nn_corruption *why) {
    uint64_t removed = 0;
    for (uint64_t node = 0; node < l->count; node++) {
        const nn_node *n = (const nn_node *)(records + node * l->record_bytes + l->header_offset);
        uint16_t flags = atomic_load_explicit(&((nn_node *)n)->flags, memory_order_relaxed);
        if (flags & ~NN_NODE_REMOVED) return fail(why, NN_CORRUPT_FLAGS, node);
        removed += flags & NN_NODE_REMOVED;
        if (n->level > NN_MAX_LEVEL) return fail(why, NN_CORRUPT_LEVEL, node);
        uint32_t count0 = atomic_load_explicit(&((nn_node *)n)->count0, memory_order_relaxed);
        if (!links_valid((const uint32_t *)(n + 1), count0, l->m0, node, l->count, why)) return false;
        if (n->level == 0) {
            if (n->upper != NN_NO_UPPER) return fail(why, NN_CORRUPT_LEVEL, node);
            continue;
        }
        uint64_t words = (uint64_t)n->level * (1 + l->m);
        // Within the store and within one segment, as the writer allocates them.
        if (n->upper >= l->upper_words || l->upper_words - n->upper < words ||
            nn_upper_segment(n->upper) != nn_upper_segment(n->upper + words - 1))
            return fail(why, NN_CORRUPT_LEVEL, node);
        for (uint32_t level = 1; level <= n->level; level++) {
            const uint32_t *list = upper + n->upper + (uint64_t)(level - 1) * (1 + l->m);
            if (!links_valid(list + 1, list[0], l->m, node, l->count, why)) return false;
            for (uint32_t i = 0; i < list[0]; i++) {  // a link on layer `level` must land on that layer
                const nn_node *target = (const nn_node *)(records + list[1 + i] * l->record_bytes + l->header_offset);
                if (target->level < level) return fail(why, NN_CORRUPT_LINK, node);
            }
        }
    }
    if (removed != l->removed) return fail(why, NN_CORRUPT_FLAGS, 0);
    return true;
}

// ---------------------------------------------------------------------------------------------

// In-degrees and locks are the running graph's own: recount rather than trust the file. A
// word is written only where it is wrong, so that a graph used in place copies no page for it.
static nn_status recount_in_degrees(nn_hnsw *h, size_t count) {
    uint32_t *in = calloc(count ? count : 1, sizeof *in);
    if (!in) return NN_ERR_NO_MEMORY;
    const nn_blocks *b = nn_blocks_now(h);
    for (uint32_t node = 0; node < count; node++) {
        _Atomic uint32_t *n;
        _Atomic uint32_t *links = nn_links(h, b, node, 0, &n);
        uint32_t links_count = atomic_load_explicit(n, memory_order_relaxed);
        for (uint32_t i = 0; i < links_count; i++) in[atomic_load_explicit(&links[i], memory_order_relaxed)]++;
    }
    for (uint32_t node = 0; node < count; node++) {
        nn_node *n = nn_header(h, b, node);
        if (atomic_load_explicit(&n->lock, memory_order_relaxed) != 0) atomic_store_explicit(&n->lock, 0, memory_order_relaxed);
        if (atomic_load_explicit(&n->in0, memory_order_relaxed) != in[node]) atomic_store_explicit(&n->in0, in[node], memory_order_relaxed);
    }
    free(in);
    return NN_OK;
}

// Copies the upper words of segment k (the part below `words` in use) into a segment of its own.
static nn_status copy_segment(nn_hnsw *h, size_t k, const uint32_t *upper, uint64_t words) {
    uint64_t size = nn_upper_segment_words(k), start = nn_upper_segment_start(k);
    if (!(h->upper[k] = calloc(size, sizeof(uint32_t)))) return NN_ERR_NO_MEMORY;
    uint64_t n = words - start < size ? words - start : size;
    memcpy((void *)h->upper[k], upper + start, n * sizeof(uint32_t));
    return NN_OK;
}

static nn_status copy_in(nn_hnsw *h, const nn_hnsw_layout *l, const char *records, const uint32_t *upper) {
    nn_status status = nn_ensure_blocks(h, l->count);
    if (status != NN_OK) return status;
    const nn_blocks *b = nn_blocks_now(h);
    for (uint64_t first = 0; first < l->count; first += NN_BLOCK_NODES) {
        uint64_t n = l->count - first < NN_BLOCK_NODES ? l->count - first : NN_BLOCK_NODES;
        memcpy(nn_record(h, b, (uint32_t)first), records + first * l->record_bytes, n * l->record_bytes);
    }
    for (size_t k = 0; k < NN_UPPER_SEGMENTS && nn_upper_segment_start(k) < l->upper_words; k++)
        if ((status = copy_segment(h, k, upper, l->upper_words)) != NN_OK) return status;
    return recount_in_degrees(h, l->count);
}

// Whole blocks and whole segments stay in the caller's memory; the last, partly filled ones
// are copied, since the graph goes on writing past their saved end.
static nn_status use_in_place(nn_hnsw *h, const nn_hnsw_layout *l, char *records, uint32_t *upper) {
    size_t whole = l->count / NN_BLOCK_NODES, rest = l->count % NN_BLOCK_NODES;
    nn_status status;
    size_t capacity = 8;  // the directory, with room for the copied last block
    while (capacity < whole + 1) capacity *= 2;
    nn_blocks *b = calloc(1, sizeof(nn_blocks) + capacity * sizeof(char *));
    if (!b) return NN_ERR_NO_MEMORY;
    b->capacity = capacity;
    atomic_store_explicit(&h->blocks, b, memory_order_relaxed);
    for (size_t i = 0; i < whole; i++) b->block[i] = records + i * NN_BLOCK_NODES * l->record_bytes;
    h->block_count = h->borrowed_blocks = whole;
    if (rest) {
        if ((status = nn_ensure_blocks(h, l->count)) != NN_OK) return status;
        memcpy(b->block[whole], records + whole * NN_BLOCK_NODES * l->record_bytes, rest * l->record_bytes);
    }
    size_t k = 0;
    for (; k < NN_UPPER_SEGMENTS && nn_upper_segment_start(k) + nn_upper_segment_words(k) <= l->upper_words; k++)
        h->upper[k] = (_Atomic uint32_t *)(upper + nn_upper_segment_start(k));
    h->borrowed_segments = k;
    if (k < NN_UPPER_SEGMENTS && nn_upper_segment_start(k) < l->upper_words &&
        (status = copy_segment(h, k, upper, l->upper_words)) != NN_OK)
        return status;
    return recount_in_degrees(h, l->count);
}

static nn_status view_in(nn_hnsw *h, const nn_hnsw_layout *l, const char *records, const uint32_t *upper) {
    size_t blocks = (l->count + NN_BLOCK_NODES - 1) / NN_BLOCK_NODES;
    nn_blocks *b = calloc(1, sizeof(nn_blocks) + (blocks ? blocks : 1) * sizeof(char *));
    if (!b) return NN_ERR_NO_MEMORY;
    b->capacity = blocks;
    for (size_t i = 0; i < blocks; i++) b->block[i] = (char *)records + i * NN_BLOCK_NODES * l->record_bytes;
    atomic_store(&h->blocks, b);
    h->block_count = blocks;
    for (size_t k = 0; k < NN_UPPER_SEGMENTS && nn_upper_segment_start(k) < l->upper_words; k++)
        h->upper[k] = (_Atomic uint32_t *)(upper + nn_upper_segment_start(k));
    h->upper_limit = l->upper_words;
    h->mapped = true;
    return NN_OK;
}

nn_status nn_hnsw_open(const nn_hnsw_layout *l, const void *records, const uint32_t *upper, nn_open_mode mode,
                       nn_isa isa, nn_hnsw **out, nn_corruption *why) {
    *why = (nn_corruption){NN_CORRUPT_NONE, 0};
    if (mode > NN_OPEN_IN_PLACE) return NN_ERR_ARGUMENT;
    if (!layout_valid(l, records, upper, why)) return NN_ERR_CORRUPT;
    if (mode != NN_OPEN_VIEW && !records_valid(l, records, upper, why)) return NN_ERR_CORRUPT;
    nn_hnsw_params params = {
        .dim = l->dim, .metric = (nn_metric)l->metric, .isa = isa, .m = l->m,
        .ef_construction = l->ef_construction, .seed = l->seed, .keep_pruned = l->keep_pruned,
    };
    nn_hnsw *h;
    nn_status status = nn_hnsw_create(&params, &h);
    if (status != NN_OK) return status;
    switch (mode) {
    case NN_OPEN_COPY: status = copy_in(h, l, records, upper); break;
    case NN_OPEN_VIEW: status = view_in(h, l, records, upper); break;
    case NN_OPEN_IN_PLACE: status = use_in_place(h, l, (char *)records, (uint32_t *)upper); break;
    }
    if (status != NN_OK) {
        nn_hnsw_destroy(h);
        return status;
    }
    h->rng = l->rng;
    h->upper_words = l->upper_words;
    atomic_store(&h->removed, l->removed);
    atomic_store(&h->entry, l->entry);
    atomic_store_explicit(&h->count, l->count, memory_order_release);
    *out = h;
    return NN_OK;
}
