# Sourced by every script outside the daemon that writes PCI sysfs (the
# guest's stage 2 and its reset, the guest test scripts, the benchmarks'
# stand-ins): they run only inside the test VM, whose kernel command line
# run-vm-test.sh gives the marker below.  On any other machine the PCI
# devices are its disk and its network: one write and the machine is gone.
# bench/switch-floor.c checks the same marker (CMake reads it from here).
GPUSWITCH_TESTVM_MARKER=gpuswitch.testvm=1

testvm_guard() { # NAME: exit 77 with a message unless this is the test VM
        local a words=()
        read -ra words 2>/dev/null < /proc/cmdline
        for a in "${words[@]}"; do
                [ "$a" = "$GPUSWITCH_TESTVM_MARKER" ] && return 0
        done
        echo "$1: refusing to run: this is not the gpuswitch test VM ($GPUSWITCH_TESTVM_MARKER is not on the kernel command line), and $1 writes PCI sysfs; run it with tests/vm/run-vm-test.sh" >&2
        exit 77
}
