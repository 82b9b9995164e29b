/* vptq_layer.h - one VPTQ-community quantized linear (quantization_config entry + its tensors
 * P.indices, P.centroids.weight, ...) checked and repacked into one tensor of bt's vq format
 * (docs/formats.md "VPTQ checkpoints as input"). */
#ifndef BT_VPTQ_LAYER_H
#define BT_VPTQ_LAYER_H
#include "bt/bt_plugin.h"

struct json_object;

/* A layer's entry of quantization_config (config_for_layers or shared_layer_config). The list
 * fields are [outlier, main] as in VPTQ; -1 = none. */
struct vptq_lcfg {
    int64_t in_features, out_features; /* -1 if the entry does not give them */
    int64_t v0, v;                     /* vector_lens */
    int64_t k0, k1;                    /* num_centroids */
    int64_t kr0, k2;                   /* num_res_centroids */
    int64_t n_out;                     /* outlier_size (columns with their own codebook) */
    int64_t G, gs;                     /* group_num, group_size */
    int     norm, perm;                /* enable_norm, enable_perm */
    int     packed, as_float, bias;    /* is_indice_packed, indices_as_float, bias */
};

/* The entry for module P (e.g. "model.layers.0.self_attn.q_proj") in the quantization_config
 * object qc: config_for_layers[P], else shared_layer_config[last name component of P]. 0 if
 * there is none; 1 and *c filled; -1 with err set (a missing or mistyped field, named). where:
 * the config.json path, for messages. */
int vptq_lcfg_find(const struct bt_host *h, struct json_object *qc, const char *P,
                   const char *where, struct vptq_lcfg *c, bt_err *err);

/* The component tensors of one layer (NULL where absent), as the safetensors reader lists them. */
struct vptq_src {
    const struct bt_tensor *idx;   /* P.indices */
    const struct bt_tensor *cent;  /* P.centroids.weight */
    const struct bt_tensor *res;   /* P.res_centroids.weight */
    const struct bt_tensor *ocent; /* P.outlier_centroids.weight */
    const struct bt_tensor *oidx;  /* P.outlier_indices */
    const struct bt_tensor *perm;  /* P.perm */
    const struct bt_tensor *scale; /* P.weight_scale */
    const struct bt_tensor *bias;  /* P.weight_bias */
};

/* A converted tensor in bt's vq format; buffers owned (malloc), freed by vptq_out_free. */
struct vptq_out {
    struct bt_tfmt fmt;                     /* bt_vq_tfmt(...) */
    uint8_t       *data;                    /* rows x row_bytes packed code-stream rows */
    uint64_t       nbytes;
    uint32_t       n_parts;                 /* bt_vq_layout order: codebook, columns, ... */
    uint8_t       *parts[BT_MAX_PARTS];
    uint64_t       part_bytes[BT_MAX_PARTS];
    uint64_t       n_conv;                  /* values converted to f16 from bf16/f32 ... */
    uint64_t       n_inexact;               /* ... of which not exactly representable */
};

/* Check layer P (an M x N linear) against its entry c and repack it into *o. Any contradiction
 * (shape, dtype, limits, out-of-range code, perm not a permutation) is BT_E_FORMAT or
 * BT_E_UNSUPPORTED naming the tensor and the field; *o is then empty. */
bt_status vptq_layer_convert(const struct bt_host *h, const char *P, const struct vptq_lcfg *c,
                             int64_t M, int64_t N, const struct vptq_src *s, struct vptq_out *o,
                             bt_err *err);
void      vptq_out_free(struct vptq_out *o);
#endif
