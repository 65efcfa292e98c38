#!/bin/bash
# The daemon's own work a switch in the QEMU guest, counted in instructions
# (valgrind's callgrind: every thread of gpuswitchd, user space only; the
# kernel's work, the drivers' remove() and probe() included, is not
# counted), where CPU time at the guest's 100 Hz tick under TCG is too
# coarse and too noisy to tell two builds apart.  The daemon runs under
# callgrind twice: a warm-up round trip host -> vfio -> host alone, then
# the warm-up and DAEMON_INSN_ROUNDS more (default 3); the difference over
# the switches it adds is the count a switch, start-up and first-use costs
# left out.  Needs a build without sanitizers (valgrind cannot run ASan).
# Figures on BENCH lines (bench/run.sh daemon-instructions keeps them).
. "$(dirname "$0")/../../tests/vm/guest-lib.sh"
. "$(dirname "$0")/../../tests/vm/gpu-lib.sh"

ROUNDS=${DAEMON_INSN_ROUNDS:-3}
DAEMON=${VMTEST_PLAIN_STAGE:+$VMTEST_PLAIN_STAGE}/usr/libexec/gpuswitchd
readelf -d "$DAEMON" | grep -q libasan && { result plain-daemon FAIL "$DAEMON is sanitized: give run-vm-test.sh --plain-stage"; finish; }

configure "" "AllowBootVga=yes"
modprobe vfio-pci
switch() { busctl --system --timeout=600 call org.gpuswitch1 /org/gpuswitch1 org.gpuswitch1.Manager Switch sst "" "$1" 0; }
settle() { udevadm settle --timeout=10 2>/dev/null; sleep 1; }

BAD=""
round_trip() {
        switch vfio >/dev/null || BAD+="vfio; "
        all_on vfio-pci || BAD+="not on vfio-pci: $(state); "
        settle
        switch host >/dev/null || BAD+="host; "
        all_original || BAD+="not back: $(state); "
        settle
}

# Instructions of one daemon's life with the warm-up and N more round trips.
counted() { # N
        local out=/tmp/callgrind.$1 vg
        pkill -x gpuswitchd
        for _ in $(seq 50); do pgrep -x gpuswitchd >/dev/null || break; sleep 0.1; done
        valgrind --tool=callgrind --callgrind-out-file="$out" "$DAEMON" 2>/tmp/callgrind.$1.log &
        vg=$!
        for _ in $(seq 1200); do bus_has_owner org.gpuswitch1 && break; kill -0 $vg 2>/dev/null || break; sleep 0.2; done
        round_trip
        for ((i = 0; i < $1; i++)); do round_trip; done
        kill -TERM $vg
        for _ in $(seq 1200); do kill -0 $vg 2>/dev/null || break; sleep 0.2; done
        sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$out"
}

base=$(counted 0)
more=$(counted "$ROUNDS")
echo "callgrind totals: warm-up only $base, with $ROUNDS more round trips $more"
if [ -n "$base" ] && [ -n "$more" ] && [ "$more" -gt "$base" ]; then
        result counted PASS
        echo "BENCH daemon instructions in the QEMU guest (callgrind, all of gpuswitchd's threads, user space):" \
                "$(awk -v a="$base" -v b="$more" -v n=$((2 * ROUNDS)) 'BEGIN { printf "%.2f M", (b - a) / n / 1e6 }')" \
                "a real switch (host -> vfio or back, $(wc -w <<< "$FNS") functions), mean of $((2 * ROUNDS))"
else
        result counted FAIL "totals '$base' and '$more'"
fi
[ -z "$BAD" ] && result every-switch-moved PASS || result every-switch-moved FAIL "$BAD"
all_original && result gpu-back-on-its-drivers PASS "$(state)" || result gpu-back-on-its-drivers FAIL "$(state)"
finish
