/* The smelt C runtime for ahead-of-time compiled models.
 *
 * This file is appended to the tables smelt generates for one model (buffers,
 * kernels, inputs, outputs; see aot.rs), so every name here may use them. It owns
 * the memory arena, a small pthread pool that splits each kernel along its parallel
 * axis, and the stable C ABI declared in the generated header. */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct smelt_pool {
    pthread_t *threads;
    int32_t n_workers; /* threads besides the caller */
    pthread_mutex_t mu;
    pthread_cond_t go;
    pthread_cond_t done;
    uint64_t generation;
    int32_t pending;
    int32_t stop;
    /* The job of the current generation. */
    smelt_kernel_fn fn;
    uint8_t *const *bufs;
    int64_t bounds[2 * SMELT_MAX_THREADS];
    int32_t n_chunks;
};

struct smelt_model {
    uint8_t *arena;
    uint8_t *bufs[SMELT_NUM_BUFFERS > 0 ? SMELT_NUM_BUFFERS : 1];
    int32_t threads;
    struct smelt_pool pool;
    struct smelt_worker_arg *args;
    char error[256];
};

struct smelt_worker_arg {
    struct smelt_model *model;
    int32_t index;
};

/* Split [0, extent) into at most `parts` ranges on multiples of `align` where the
 * extent allows; the same rule as the Rust runtime. */
static int32_t smelt_chunks(int64_t extent, int32_t parts, int64_t align, int64_t *bounds) {
    if (parts < 1) parts = 1;
    if (parts > extent) parts = (int32_t)(extent > 0 ? extent : 1);
    if (align < 1 || extent < align * parts) align = 1;
    int64_t units = (extent + align - 1) / align;
    int64_t per = (units + parts - 1) / parts;
    int32_t n = 0;
    for (int64_t lo = 0; lo < extent; n++) {
        int64_t hi = lo + per * align;
        if (hi > extent) hi = extent;
        bounds[2 * n] = lo;
        bounds[2 * n + 1] = hi;
        lo = hi;
    }
    if (n == 0) {
        bounds[0] = 0;
        bounds[1] = 0;
        n = 1;
    }
    return n;
}

static void *smelt_worker(void *p) {
    struct smelt_worker_arg *arg = p;
    struct smelt_pool *pool = &arg->model->pool;
    uint64_t seen = 0;
    for (;;) {
        pthread_mutex_lock(&pool->mu);
        while (pool->generation == seen && !pool->stop) pthread_cond_wait(&pool->go, &pool->mu);
        if (pool->stop) {
            pthread_mutex_unlock(&pool->mu);
            return NULL;
        }
        seen = pool->generation;
        int32_t chunk = arg->index + 1;
        smelt_kernel_fn fn = pool->fn;
        uint8_t *const *bufs = pool->bufs;
        int64_t lo = 0, hi = 0;
        int32_t active = chunk < pool->n_chunks;
        if (active) {
            lo = pool->bounds[2 * chunk];
            hi = pool->bounds[2 * chunk + 1];
        }
        pthread_mutex_unlock(&pool->mu);
        if (active) fn(bufs, smelt_dims, lo, hi);
        pthread_mutex_lock(&pool->mu);
        if (--pool->pending == 0) pthread_cond_signal(&pool->done);
        pthread_mutex_unlock(&pool->mu);
    }
}

static void smelt_run_kernel(struct smelt_model *m, const struct smelt_kernel_desc *k) {
    if (m->threads <= 1 || k->extent < 2 || k->points < SMELT_PARALLEL_MIN_POINTS) {
        k->fn(m->bufs, smelt_dims, 0, k->extent);
        return;
    }
    struct smelt_pool *pool = &m->pool;
    pthread_mutex_lock(&pool->mu);
    pool->fn = k->fn;
    pool->bufs = m->bufs;
    pool->n_chunks = smelt_chunks(k->extent, m->threads, k->align, pool->bounds);
    pool->pending = pool->n_workers;
    pool->generation++;
    pthread_cond_broadcast(&pool->go);
    int64_t lo = pool->bounds[0], hi = pool->bounds[1];
    pthread_mutex_unlock(&pool->mu);
    k->fn(m->bufs, smelt_dims, lo, hi);
    pthread_mutex_lock(&pool->mu);
    while (pool->pending > 0) pthread_cond_wait(&pool->done, &pool->mu);
    pthread_mutex_unlock(&pool->mu);
}

smelt_model *smelt_model_new(int32_t threads) {
    smelt_model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    if (threads < 1) threads = 1;
    if (threads > SMELT_MAX_THREADS) threads = SMELT_MAX_THREADS;
    m->threads = threads;
    if (SMELT_ARENA_BYTES > 0) {
        if (posix_memalign((void **)&m->arena, 64, SMELT_ARENA_BYTES) != 0) {
            free(m);
            return NULL;
        }
    }
    for (int32_t i = 0; i < SMELT_NUM_BUFFERS; i++) {
        const struct smelt_buffer_desc *b = &smelt_buffers[i];
        if (b->kind == SMELT_BUF_CONST) m->bufs[i] = (uint8_t *)smelt_weights + b->offset;
        else if (b->kind == SMELT_BUF_TEMP) m->bufs[i] = m->arena + b->offset;
    }
    struct smelt_pool *pool = &m->pool;
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->go, NULL);
    pthread_cond_init(&pool->done, NULL);
    pool->n_workers = threads - 1;
    if (pool->n_workers > 0) {
        pool->threads = calloc((size_t)pool->n_workers, sizeof(pthread_t));
        m->args = calloc((size_t)pool->n_workers, sizeof(struct smelt_worker_arg));
        if (!pool->threads || !m->args) {
            smelt_model_free(m);
            return NULL;
        }
        for (int32_t i = 0; i < pool->n_workers; i++) {
            m->args[i].model = m;
            m->args[i].index = i;
            if (pthread_create(&pool->threads[i], NULL, smelt_worker, &m->args[i]) != 0) {
                pool->n_workers = i;
                smelt_model_free(m);
                return NULL;
            }
        }
    }
    return m;
}

void smelt_model_free(smelt_model *m) {
    if (!m) return;
    struct smelt_pool *pool = &m->pool;
    pthread_mutex_lock(&pool->mu);
    pool->stop = 1;
    pthread_cond_broadcast(&pool->go);
    pthread_mutex_unlock(&pool->mu);
    for (int32_t i = 0; i < pool->n_workers; i++) pthread_join(pool->threads[i], NULL);
    free(pool->threads);
    free(m->args);
    free(m->arena);
    free(m);
}

const char *smelt_model_last_error(const smelt_model *m) {
    return m ? m->error : "no model";
}

static int32_t smelt_check(smelt_model *m, const char *what, int32_t i, const smelt_tensor *t,
                           const struct smelt_io_desc *d) {
    if (t->dtype != d->dtype) {
        snprintf(m->error, sizeof m->error, "%s %d `%s`: dtype %d, expected %d", what, i, d->name,
                 (int)t->dtype, (int)d->dtype);
        return -1;
    }
    if (t->rank != d->rank) {
        snprintf(m->error, sizeof m->error, "%s %d `%s`: rank %d, expected %d", what, i, d->name,
                 (int)t->rank, (int)d->rank);
        return -1;
    }
    for (int32_t j = 0; j < d->rank; j++) {
        if (!t->shape || t->shape[j] != d->shape[j]) {
            snprintf(m->error, sizeof m->error,
                     "%s %d `%s`: dim %d is %lld, this library was compiled for %lld", what, i,
                     d->name, j, t->shape ? (long long)t->shape[j] : -1LL,
                     (long long)d->shape[j]);
            return -1;
        }
    }
    if (t->bytes != d->bytes || !t->data) {
        snprintf(m->error, sizeof m->error, "%s %d `%s`: %llu bytes at %p, expected %llu", what,
                 i, d->name, (unsigned long long)t->bytes, t->data,
                 (unsigned long long)d->bytes);
        return -1;
    }
    return 0;
}

int32_t smelt_model_run(smelt_model *m, const smelt_tensor *inputs, int32_t n_inputs,
                        smelt_tensor *outputs, int32_t n_outputs) {
    if (!m) return -1;
    m->error[0] = 0;
    if (n_inputs != SMELT_NUM_INPUTS || n_outputs != SMELT_NUM_OUTPUTS) {
        snprintf(m->error, sizeof m->error, "expected %d inputs and %d outputs, got %d and %d",
                 SMELT_NUM_INPUTS, SMELT_NUM_OUTPUTS, (int)n_inputs, (int)n_outputs);
        return -1;
    }
    for (int32_t i = 0; i < SMELT_NUM_INPUTS; i++)
        if (smelt_check(m, "input", i, &inputs[i], &smelt_inputs[i])) return -1;
    for (int32_t i = 0; i < SMELT_NUM_OUTPUTS; i++)
        if (smelt_check(m, "output", i, &outputs[i], &smelt_outputs[i])) return -1;
    for (int32_t i = 0; i < SMELT_NUM_BUFFERS; i++) {
        const struct smelt_buffer_desc *b = &smelt_buffers[i];
        if (b->kind == SMELT_BUF_INPUT) m->bufs[i] = (uint8_t *)inputs[b->index].data;
        else if (b->kind == SMELT_BUF_OUTPUT) m->bufs[i] = (uint8_t *)outputs[b->index].data;
    }
    for (int32_t i = 0; i < SMELT_NUM_BUFFERS; i++)
        if (smelt_buffers[i].kind == SMELT_BUF_VIEW) m->bufs[i] = m->bufs[smelt_buffers[i].index];
    for (int32_t i = 0; i < SMELT_NUM_KERNELS; i++) smelt_run_kernel(m, &smelt_kernels[i]);
    return 0;
}

int32_t smelt_model_num_inputs(void) { return SMELT_NUM_INPUTS; }
int32_t smelt_model_num_outputs(void) { return SMELT_NUM_OUTPUTS; }

static const struct smelt_io_desc *smelt_io(int32_t output, int32_t i) {
    if (output) return i >= 0 && i < SMELT_NUM_OUTPUTS ? &smelt_outputs[i] : NULL;
    return i >= 0 && i < SMELT_NUM_INPUTS ? &smelt_inputs[i] : NULL;
}

int32_t smelt_model_io(int32_t output, int32_t i, smelt_io_info *info) {
    const struct smelt_io_desc *d = smelt_io(output, i);
    if (!d || !info) return -1;
    info->name = d->name;
    info->dtype = d->dtype;
    info->rank = d->rank;
    info->shape = d->shape;
    info->bytes = d->bytes;
    return 0;
}
