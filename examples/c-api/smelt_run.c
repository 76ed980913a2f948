/* Run an ahead-of-time compiled smelt model from C.
 *
 *   smelt compile model.onnx --dim batch=1 --dim seq=16 -o model.so
 *   cc -O2 -I. smelt_run.c model.so -Wl,-rpath,'$ORIGIN' -o smelt_run
 *   ./smelt_run [--threads N] [--repeat N] IN0.npy IN1.npy ... OUT_DIR
 *
 * Inputs are .npy files in the model's input order (dtype and shape must match what
 * the library was compiled for); each output is written to OUT_DIR/<index>.npy and
 * summarised on stdout. With --repeat, the median run time is printed too. */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"

static const char *npy_descr(int32_t dtype) {
    switch (dtype) {
    case SMELT_FLOAT: return "<f4";
    case SMELT_DOUBLE: return "<f8";
    case SMELT_INT64: return "<i8";
    case SMELT_INT32: return "<i4";
    case SMELT_INT16: return "<i2";
    case SMELT_INT8: return "|i1";
    case SMELT_UINT8: return "|u1";
    case SMELT_BOOL: return "|b1";
    default: return NULL;
    }
}

/* Read a .npy file whose dtype and shape must be those of `info`; returns the data
 * (malloc'd) or NULL with a message on stderr. */
static void *read_npy(const char *path, const smelt_io_info *info) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return NULL;
    }
    unsigned char magic[10];
    if (fread(magic, 1, 10, f) != 10 || memcmp(magic, "\x93NUMPY", 6) != 0) {
        fprintf(stderr, "%s: not a .npy file\n", path);
        fclose(f);
        return NULL;
    }
    uint32_t header_len;
    if (magic[6] == 1) {
        header_len = magic[8] | (magic[9] << 8);
    } else {
        unsigned char more[2];
        if (fread(more, 1, 2, f) != 2) {
            fclose(f);
            return NULL;
        }
        header_len = magic[8] | (magic[9] << 8) | (more[0] << 16) | ((uint32_t)more[1] << 24);
    }
    char *header = calloc(header_len + 1, 1);
    if (!header || fread(header, 1, header_len, f) != header_len) {
        fprintf(stderr, "%s: truncated header\n", path);
        free(header);
        fclose(f);
        return NULL;
    }
    const char *want = npy_descr(info->dtype);
    char expect_shape[256] = "(";
    for (int32_t i = 0; i < info->rank; i++) {
        char dim[32];
        snprintf(dim, sizeof dim, "%lld%s", (long long)info->shape[i],
                 info->rank == 1 ? "," : (i + 1 < info->rank ? ", " : ""));
        strncat(expect_shape, dim, sizeof expect_shape - strlen(expect_shape) - 1);
    }
    strncat(expect_shape, ")", sizeof expect_shape - strlen(expect_shape) - 1);
    if (!want || !strstr(header, want) || strstr(header, "'fortran_order': True") ||
        !strstr(header, expect_shape)) {
        fprintf(stderr, "%s: expected dtype %s shape %s for input `%s`, header is %s\n", path,
                want ? want : "?", expect_shape, info->name, header);
        free(header);
        fclose(f);
        return NULL;
    }
    free(header);
    void *data = malloc(info->bytes ? info->bytes : 1);
    if (!data || fread(data, 1, info->bytes, f) != info->bytes) {
        fprintf(stderr, "%s: expected %llu bytes of data\n", path,
                (unsigned long long)info->bytes);
        free(data);
        fclose(f);
        return NULL;
    }
    fclose(f);
    return data;
}

static int write_npy(const char *path, const smelt_io_info *info, const void *data) {
    const char *descr = npy_descr(info->dtype);
    if (!descr) return -1;
    char dict[512];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int32_t i = 0; i < info->rank; i++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%lld,%s", (long long)info->shape[i],
                      i + 1 < info->rank ? " " : "");
    n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
    int total = 10 + n + 1;
    int pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    uint16_t hlen = (uint16_t)(n + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc(hlen & 0xff, f);
    fputc(hlen >> 8, f);
    fwrite(dict, 1, (size_t)n, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    fwrite(data, 1, info->bytes, f);
    return fclose(f);
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int threads = 1, repeat = 0, arg = 1;
    while (arg + 1 < argc && strncmp(argv[arg], "--", 2) == 0) {
        if (!strcmp(argv[arg], "--threads")) threads = atoi(argv[arg + 1]);
        else if (!strcmp(argv[arg], "--repeat")) repeat = atoi(argv[arg + 1]);
        else break;
        arg += 2;
    }
    int32_t n_in = smelt_model_num_inputs(), n_out = smelt_model_num_outputs();
    if (argc - arg != n_in + 1) {
        fprintf(stderr, "usage: %s [--threads N] [--repeat N] <%d input .npy files> OUT_DIR\n",
                argv[0], n_in);
        for (int32_t i = 0; i < n_in; i++) {
            smelt_io_info info;
            smelt_model_io(0, i, &info);
            fprintf(stderr, "  input %d: %s\n", i, info.name);
        }
        return 2;
    }
    smelt_tensor *inputs = calloc((size_t)n_in + 1, sizeof *inputs);
    smelt_tensor *outputs = calloc((size_t)n_out + 1, sizeof *outputs);
    smelt_io_info *out_info = calloc((size_t)n_out + 1, sizeof *out_info);
    for (int32_t i = 0; i < n_in; i++) {
        smelt_io_info info;
        smelt_model_io(0, i, &info);
        void *data = read_npy(argv[arg + i], &info);
        if (!data) return 1;
        inputs[i] = (smelt_tensor){info.dtype, info.rank, info.shape, data, info.bytes};
    }
    for (int32_t i = 0; i < n_out; i++) {
        smelt_model_io(1, i, &out_info[i]);
        void *data = malloc(out_info[i].bytes ? out_info[i].bytes : 1);
        outputs[i] = (smelt_tensor){out_info[i].dtype, out_info[i].rank, out_info[i].shape, data,
                                    out_info[i].bytes};
    }
    smelt_model *m = smelt_model_new(threads);
    if (!m) {
        fprintf(stderr, "smelt_model_new failed\n");
        return 1;
    }
    if (smelt_model_run(m, inputs, n_in, outputs, n_out) != 0) {
        fprintf(stderr, "run failed: %s\n", smelt_model_last_error(m));
        return 1;
    }
    if (repeat > 0) {
        double *times = calloc((size_t)repeat, sizeof *times);
        for (int r = 0; r < repeat; r++) {
            double t0 = now_ms();
            smelt_model_run(m, inputs, n_in, outputs, n_out);
            times[r] = now_ms() - t0;
        }
        qsort(times, (size_t)repeat, sizeof *times, cmp_double);
        printf("median %.3f ms over %d runs (%d threads)\n", times[repeat / 2], repeat, threads);
        free(times);
    }
    const char *dir = argv[arg + n_in];
    for (int32_t i = 0; i < n_out; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%d.npy", dir, i);
        if (write_npy(path, &out_info[i], outputs[i].data) != 0) {
            fprintf(stderr, "writing %s failed\n", path);
            return 1;
        }
        printf("output %d %s: %llu bytes -> %s\n", i, out_info[i].name,
               (unsigned long long)out_info[i].bytes, path);
    }
    smelt_model_free(m);
    for (int32_t i = 0; i < n_in; i++) free(inputs[i].data);
    for (int32_t i = 0; i < n_out; i++) free(outputs[i].data);
    free(inputs);
    free(outputs);
    free(out_info);
    return 0;
}
