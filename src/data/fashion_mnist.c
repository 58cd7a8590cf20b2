/* Fashion-MNIST from IDX files, gzip'd or plain, with every header checked. */
#include "clpar/data.h"
#include "../runtime/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Reads a whole IDX file (trying name.gz, then name) into *buf. gzread reads plain files
 * unchanged, so one path serves both. */
static clpar_status read_file(const char *dir, const char *name, unsigned char **buf, size_t *len,
                              char *path, size_t pathlen) {
    snprintf(path, pathlen, "%s/%s.gz", dir, name);
    gzFile f = gzopen(path, "rb");
    if (!f) {
        snprintf(path, pathlen, "%s/%s", dir, name);
        f = gzopen(path, "rb");
    }
    if (!f)
        return clpar_error(CLPAR_EIO, "%s/%s(.gz): %s", dir, name,
                           errno ? strerror(errno) : "cannot open");
    size_t cap = 1 << 20, n = 0;
    int r = 0;
    unsigned char *b = malloc(cap);
    for (;;) {
        if (!b) {
            gzclose(f);
            return clpar_error(CLPAR_ENOMEM, "out of host memory reading %s", path);
        }
        if (n == cap) {
            unsigned char *nb = realloc(b, cap *= 2);
            if (!nb) free(b);
            b = nb;
            continue;
        }
        r = gzread(f, b + n, (unsigned)(cap - n));
        if (r <= 0) break;
        n += (size_t)r;
    }
    int zerr;
    const char *msg = gzerror(f, &zerr);
    if (r < 0 || (zerr != Z_OK && zerr != Z_STREAM_END)) {
        /* zlib's message lives in f: format it before gzclose frees it */
        clpar_status st = clpar_error(CLPAR_EFORMAT, "%s: corrupt or truncated (%s)", path, msg);
        gzclose(f);
        free(b);
        return st;
    }
    gzclose(f);
    *buf = b;
    *len = n;
    return CLPAR_OK;
}

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static clpar_status load_split(const char *dir, const char *prefix, clpar_dataset *ds) {
    char ipath[4096], lpath[4096], name[64];
    unsigned char *img = NULL, *lab = NULL;
    size_t ilen = 0, llen = 0;
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
    TRY(read_file(dir, name, &img, &ilen, ipath, sizeof ipath));
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
    clpar_status rc = read_file(dir, name, &lab, &llen, lpath, sizeof lpath);
    if (rc != CLPAR_OK) {
        free(img);
        return rc;
    }
    if (ilen < 16 || be32(img) != 0x00000803)
        rc = clpar_error(CLPAR_EFORMAT, "%s: bad magic 0x%08x (expected 0x00000803)", ipath,
                         ilen >= 4 ? be32(img) : 0);
    else if (llen < 8 || be32(lab) != 0x00000801)
        rc = clpar_error(CLPAR_EFORMAT, "%s: bad magic 0x%08x (expected 0x00000801)", lpath,
                         llen >= 4 ? be32(lab) : 0);
    else if (be32(img + 8) != 28 || be32(img + 12) != 28)
        rc = clpar_error(CLPAR_EFORMAT, "%s: images are %ux%u, expected 28x28", ipath,
                         be32(img + 8), be32(img + 12));
    else if (be32(img + 4) != be32(lab + 4))
        rc = clpar_error(CLPAR_EFORMAT, "%s holds %u images but %s holds %u labels", ipath,
                         be32(img + 4), lpath, be32(lab + 4));
    else if (be32(img + 4) == 0)
        rc = clpar_error(CLPAR_EFORMAT, "%s: holds no images", ipath);
    else if (ilen != 16 + (size_t)be32(img + 4) * 784)
        rc = clpar_error(CLPAR_EFORMAT, "%s: %zu bytes of pixels, header promises %zu", ipath,
                         ilen - 16, (size_t)be32(img + 4) * 784);
    else if (llen != 8 + (size_t)be32(lab + 4))
        rc = clpar_error(CLPAR_EFORMAT, "%s: %zu labels, header promises %u", lpath, llen - 8,
                         be32(lab + 4));
    if (rc == CLPAR_OK) {
        size_t n = be32(img + 4);
        ds->n = n;
        ds->in = 784;
        ds->out = 10;
        ds->x = malloc(n * 784 * sizeof(float));
        ds->labels = malloc(n * sizeof(int));
        ds->targets = NULL;
        if (!ds->x || !ds->labels) rc = clpar_error(CLPAR_ENOMEM, "out of host memory");
        for (size_t i = 0; rc == CLPAR_OK && i < n * 784; i++)
            ds->x[i] = img[16 + i] / 255.0f;
        for (size_t i = 0; rc == CLPAR_OK && i < n; i++) {
            if (lab[8 + i] > 9) {
                rc = clpar_error(CLPAR_EFORMAT, "%s: label %u of sample %zu is not a class 0..9",
                                 lpath, lab[8 + i], i);
                break;
            }
            ds->labels[i] = lab[8 + i];
        }
        if (rc != CLPAR_OK) clpar_dataset_free(ds);
    }
    free(img);
    free(lab);
    return rc;
}

clpar_status clpar_dataset_load_fashion_mnist(const char *dir, clpar_dataset *train,
                                              clpar_dataset *test) {
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    TRY(load_split(dir, "train", train));
    clpar_status rc = load_split(dir, "t10k", test);
    if (rc != CLPAR_OK) clpar_dataset_free(train);
    return rc;
}
