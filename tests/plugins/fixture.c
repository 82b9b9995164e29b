/* fixture.c - deliberately good and broken plugins for the loader tests. One source, built
 * once per FIXTURE_* variant (see CMakeLists.txt). */
#include "bt/bt_plugin.h"

#include <stddef.h>

#if !defined(FIXTURE_NO_SYMBOL) && !defined(FIXTURE_INIT_FAILS)

static bt_status q_open(void *c, const struct bt_host *h, const bt_optset *o, bt_err *e) { return BT_OK; }
static void q_close(void *c) {}
static bt_status q_plan(void *c, const struct bt_qtensor *t, struct bt_tfmt *f, bt_err *e) { return BT_E_UNSUPPORTED; }
static bt_status q_quant(void *c, const struct bt_qtensor *t, const struct bt_tfmt *f, const float *s,
                         int64_t n, void *d, struct bt_qstats *st, bt_err *e) { return BT_E_UNSUPPORTED; }
static const struct bt_quantizer_i qi = {
    .struct_size = sizeof(struct bt_quantizer_i), .open = q_open, .close = q_close, .plan = q_plan, .quantize = q_quant};

static const struct bt_option opts[] = {
    {"level", BT_OPT_INT, "3", 1, 9, NULL, "a level"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

#endif

#ifndef FIXTURE_NAME
#define FIXTURE_NAME "fixture-ok"
#endif

#if !defined(FIXTURE_NO_SYMBOL) && !defined(FIXTURE_INIT_FAILS)
static const struct bt_plugin desc = {
#if defined(FIXTURE_ABI_MAJOR)
    .abi_version = (uint32_t)((BT_ABI_MAJOR + 1) << 16),
#elif defined(FIXTURE_ABI_MINOR)
    .abi_version = (uint32_t)((BT_ABI_MAJOR << 16) | (BT_ABI_MINOR + 1)),
#else
    .abi_version = BT_ABI_VERSION,
#endif
#if defined(FIXTURE_TRUNCATED)
    .struct_size = (uint32_t)offsetof(struct bt_plugin, options),
#else
    .struct_size = sizeof(struct bt_plugin),
#endif
    .name = FIXTURE_NAME,
    .version = "0.0.1",
    .kind = BT_KIND_QUANTIZER,
    .description = "loader test fixture",
    .options = opts,
    .iface = &qi,
    .ctx_size = 16,
};
#endif

#if defined(FIXTURE_NO_SYMBOL)
BT_EXPORT int not_the_init_symbol(void) { return 0; }
#elif defined(FIXTURE_INIT_FAILS)
BT_EXPORT bt_status bt_plugin_init(const struct bt_host *host, const struct bt_plugin **out) {
    (void)host;
    *out = NULL;
    return BT_E_PLUGIN;
}
#else
BT_PLUGIN_DEFINE(desc)
#endif
