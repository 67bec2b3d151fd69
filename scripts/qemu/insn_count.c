/* Counts the guest instructions a program executes under qemu-user (TCG plugin API,
 * version 1 as in QEMU 7.2, Debian bookworm). Prints "guest_instructions N" to stderr at
 * exit. Used by scripts/qemu-insn.sh; only the few API entry points it needs are declared
 * here (the API is a stable C ABI; Debian ships no qemu-plugin.h).
 *
 *   gcc -shared -fPIC -O2 -o insn_count.so insn_count.c
 *   qemu-aarch64 -plugin ./insn_count.so PROGRAM ARGS...
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define EXPORT __attribute__((visibility("default")))

typedef uint64_t plugin_id;
struct qemu_plugin_tb;
struct qemu_info;
enum inline_op { INLINE_ADD_U64 = 0 };

void qemu_plugin_register_vcpu_tb_trans_cb(plugin_id id,
                                           void (*cb)(plugin_id, struct qemu_plugin_tb *));
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum inline_op op,
                                              void *ptr, uint64_t imm);
void qemu_plugin_register_atexit_cb(plugin_id id, void (*cb)(plugin_id, void *), void *data);

EXPORT int qemu_plugin_version = 1;

/* Single-threaded guests only (the inline add is not atomic): run tract with 1 thread. */
static uint64_t executed;

static void on_translate(plugin_id id, struct qemu_plugin_tb *tb) {
    (void)id;
    qemu_plugin_register_vcpu_tb_exec_inline(tb, INLINE_ADD_U64, &executed,
                                             qemu_plugin_tb_n_insns(tb));
}

static void on_exit_(plugin_id id, void *data) {
    (void)id;
    (void)data;
    fprintf(stderr, "guest_instructions %" PRIu64 "\n", executed);
}

EXPORT int qemu_plugin_install(plugin_id id, const struct qemu_info *info, int argc,
                               char **argv) {
    (void)info;
    (void)argc;
    (void)argv;
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_exit_, NULL);
    return 0;
}
