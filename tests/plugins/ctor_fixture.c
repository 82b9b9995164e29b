/* ctor_fixture.c - plugins with an ELF constructor that creates the file named by
 * $BT_TEST_MARKER: the loader must refuse the broken ones before dlopen runs that constructor.
 * CTOR_NO_INIT: no bt_plugin_init; CTOR_EXTRA: bt_plugin_init and one more exported symbol;
 * neither: a valid plugin (its constructor does run: what the ELF check cannot prevent). */
#include "bt/bt_plugin.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((constructor)) static void ctor_mark(void) {
    const char *m = getenv("BT_TEST_MARKER");
    if (!m) return;
    int fd = open(m, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) close(fd);
}

#ifdef CTOR_NO_INIT
BT_EXPORT int ctor_not_the_init_symbol(void) { return 0; }
#else
static bt_status q_open(void *c, const struct bt_host *h, const bt_optset *o, bt_err *e) { return BT_OK; }
static void q_close(void *c) {}
static bt_status q_plan(void *c, const struct bt_qtensor *t, struct bt_tfmt *f, bt_err *e) { return BT_E_UNSUPPORTED; }
static bt_status q_quant(void *c, const struct bt_qtensor *t, const struct bt_tfmt *f, const float *s,
                         int64_t n, void *d, struct bt_qstats *st, bt_err *e) { return BT_E_UNSUPPORTED; }
static const struct bt_quantizer_i qi = {
    .struct_size = sizeof(struct bt_quantizer_i), .open = q_open, .close = q_close, .plan = q_plan, .quantize = q_quant};
static const struct bt_plugin desc = {
    .abi_version = BT_ABI_VERSION, .struct_size = sizeof(struct bt_plugin), .name = FIXTURE_NAME,
    .version = "0.0.1", .kind = BT_KIND_QUANTIZER, .description = "constructor fixture", .iface = &qi,
};
BT_PLUGIN_DEFINE(desc)
#ifdef CTOR_EXTRA
BT_EXPORT int ctor_extra_export(void) { return 1; }
#endif
#endif
