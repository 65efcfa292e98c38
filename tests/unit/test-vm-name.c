/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The libvirt domain of a QEMU process from its cgroup line. */
#include "testlib.h"
#include "util.h"
#include "vm-name.h"

static const char *name_of(const char *line) {
        static char buf[64];

        return vm_name_from_cgroup(line, buf, sizeof buf) ? buf : NULL;
}

int main(void) {
        /* libvirt's QEMU and its emulator/vcpu sub-groups (cgroup v2) */
        CHECK_STR(name_of("0::/machine.slice/machine-qemu\\x2d1\\x2dwin11.scope/libvirt/emulator"), "win11");
        CHECK_STR(name_of("0::/machine.slice/machine-qemu\\x2d12\\x2dgpu\\x2dunmanaged.scope"), "gpu-unmanaged");
        CHECK_STR(name_of("0::/machine.slice/machine-qemu\\x2d3\\x2dwin11.scope/libvirt/vcpu0"), "win11");
        /* "." and "_" are not escaped */
        CHECK_STR(name_of("0::/machine.slice/machine-qemu\\x2d2\\x2dfedora_39.test.scope/libvirt"), "fedora_39.test");
        /* other machines, other slices, not libvirt's shape */
        CHECK(!name_of("0::/machine.slice/machine-lxc\\x2d1\\x2dbox.scope"));
        CHECK(!name_of("0::/machine.slice/systemd-nspawn@box.service"));
        CHECK(!name_of("0::/user.slice/user-1000.slice/user@1000.service/app.slice/machine-qemu\\x2d1\\x2dwin11.scope"));
        CHECK(!name_of("0::/system.slice/libvirtd.service"));
        CHECK(!name_of("0::/machine.slice/machine-qemu\\x2dx\\x2dwin11.scope"));
        CHECK(!name_of("0::/machine.slice/machine-qemu\\x2d1\\x2d.scope"));
        CHECK(!name_of("0::/machine.slice/machine-qemu\\x2d1\\x2dwin11.scopeX"));
        /* a raw '-' would be a slice boundary: not a scope name */
        CHECK(!name_of("0::/machine.slice/machine-qemu-1-win11.scope"));
        /* escapes that are not bytes, or bytes that are not printable */
        CHECK(!name_of("0::/machine.slice/machine-qemu\\x2d1\\x2dwin\\x1b11.scope"));
        CHECK(!name_of("0::/machine.slice/machine-qemu\\x2d1\\x2dwin\\xff.scope"));
        CHECK(!name_of("0::/machine.slice/machine-qemu\\x2d1\\x2dwin\\x2.scope"));
        CHECK(!name_of("0::/machine.slice/machine-qemu\\x2d1\\x2dwin\\q1.scope"));
        /* cut to the buffer */
        {
                char small[4];

                CHECK(vm_name_from_cgroup("0::/machine.slice/machine-qemu\\x2d1\\x2dwin11.scope", small, sizeof small));
                CHECK_STR(small, "win");
        }
        return test_failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
