#!/bin/bash
# vmtest: systemd
# vmtest: two-cpus
# Switch latency, in the QEMU guest only (it rebinds the GPU): a round trip
# host -> vfio -> host of every function of the emulated GPU, timed for
#   floor        bench/switch-floor: the bare kernel sequence in C
#   pci-bind     the usual root shell script, a loop over $slot.*
#   driverctl    Debian's driverctl --nosave set-override/unset-override,
#                once per function
#   gpuswitchctl gpuswitchctl vfio, then gpuswitchctl host, as root, through
#                the daemon under its systemd unit on the system bus
#   busctl       the daemon's Switch method called with busctl: the daemon
#                without gpuswitchctl's own start and calls, for the analysis
# in one boot, on the same GPU: a warm-up round, then SWITCH_ROUNDS rounds
# (default 20), each subject once per round, in a new random order each
# round.
# A round trip is the wall clock of its two commands (bash's EPOCHREALTIME,
# no exec to read the clock), nothing subtracted; between commands, outside
# the clock, udev and the kernel settle and the state is checked, and each
# round trip starts on a GPU that has rested SWITCH_HOST_IDLE seconds
# (default 3) on its host drivers: sooner, their own initialisation is
# still running and the first unbind waits for it, whoever makes it.
# Last, the fixed cost of a command without kernel writes.
# Figures on BENCH lines (bench/run.sh keeps them); RESULT lines say whether
# every subject really moved every function and put it back.
. "$(dirname "$0")/../../tests/vm/guest-lib.sh"
. "$(dirname "$0")/../../tests/vm/gpu-lib.sh"

ROUNDS=${SWITCH_ROUNDS:-20}
HOST_IDLE=${SWITCH_HOST_IDLE:-3}   # seconds on the host drivers before each round trip
SUBJECTS=(floor pci-bind driverctl gpuswitchctl busctl)
declare -A LABEL=(
        [floor]="floor (bare kernel sequence, C)"
        [pci-bind]="pci-bind shell loop"
        [driverctl]="driverctl per function"
        [gpuswitchctl]="gpuswitchctl vfio + host"
        [busctl]="busctl call Switch (the daemon alone)"
)

# The floor is built next to the stage that run-vm-test.sh installed.
FLOOR=${SWITCH_FLOOR:-}
if [ -z "$FLOOR" ]; then
        read -r cmdline < /proc/cmdline
        for a in $cmdline; do
                case "$a" in vmtest.stage=*) FLOOR=$(dirname "${a#*=}")/bench/switch-floor ;; esac
        done
fi
[ -x "$FLOOR" ] && result floor-built PASS "$FLOOR" || result floor-built FAIL "no switch-floor at '$FLOOR'"

PCI_BIND=$(cd "$(dirname "$0")" && pwd)/pci-bind.sh   # the usual user script

driverctl_all() { # vfio|host
        local dev
        for dev in /sys/bus/pci/devices/"$SLOT".*; do
                if [ "$1" = vfio ]; then
                        driverctl --nosave set-override "${dev##*/}" vfio-pci || return
                else
                        driverctl --nosave unset-override "${dev##*/}" || return
                fi
        done
}

subject() { # NAME vfio|host
        local to=
        [ "$2" = vfio ] && to=vfio-pci
        case "$1" in
        floor) "$FLOOR" "$2" "$SLOT" ;;
        pci-bind) "$PCI_BIND" "$to" "$SLOT" ;;
        driverctl) driverctl_all "$2" ;;
        gpuswitchctl) $CTL "$2" ;;
        busctl) busctl --system call org.gpuswitch1 /org/gpuswitch1 org.gpuswitch1.Manager Switch sst "" "$2" 0 ;;
        esac
}

# Outside the clock: the uevents of the last moves handled (udev, the
# daemon's refresh), the HDA codec's asynchronous probe done.
settle() { udevadm settle --timeout=10 2>/dev/null; sleep 0.3; }

nic_untouched() { [ "$(drv $NIC)" = "${ORIG[$NIC]}" ] && [ "$(override $NIC)" = "(null)" ]; }
usec() { local t=${1/./}; echo $((10#$t)); }   # EPOCHREALTIME -> microseconds

declare -A TIMES TO_VFIO TO_HOST BAD
log=/tmp/switch-latency.log
one_round_trip() { # NAME TIMED(0|1)
        local s=$1 t0 t1 t2 t3 rc1 rc2
        t0=$EPOCHREALTIME
        subject "$s" vfio >>"$log" 2>&1; rc1=$?
        t1=$EPOCHREALTIME
        if [ $rc1 != 0 ] || ! all_on vfio-pci; then
                BAD[$s]+="to vfio rc=$rc1: $(state); "
        fi
        settle
        t2=$EPOCHREALTIME
        subject "$s" host >>"$log" 2>&1; rc2=$?
        t3=$EPOCHREALTIME
        if [ $rc2 != 0 ] || ! all_original; then
                BAD[$s]+="to host rc=$rc2: $(state); "
                # the next subject starts from the original state
                "$PCI_BIND" "" "$SLOT" >>"$log" 2>&1
        fi
        nic_untouched || BAD[$s]+="NIC on $(drv $NIC)[$(override $NIC)]; "
        # The next subject starts on a settled GPU.  Its host drivers go on
        # initialising after their probe returned (the HDA codec probe,
        # DRM's fbdev), and an unbind during that waits for it: the floor's
        # switch to vfio took ~800 ms 0.2 s after the switch to the host,
        # 140-480 ms after 1 s, 110-210 ms after 3 s (all in one boot).
        settle; sleep "$HOST_IDLE"
        [ "$2" = 1 ] || return 0
        local a b
        a=$(( $(usec $t1) - $(usec $t0) )); b=$(( $(usec $t3) - $(usec $t2) ))
        TIMES[$s]+="$((a + b)) "; TO_VFIO[$s]+="$a "; TO_HOST[$s]+="$b "
}

# ---- setup ------------------------------------------------------------------
configure "" "AllowBootVga=yes"
modprobe vfio-pci   # loaded once, before any clock runs
echo "switch latency: slot $SLOT ($FNS), $ROUNDS rounds, floor $FLOOR"

for s in "${SUBJECTS[@]}"; do one_round_trip "$s" 0; done   # warm-up, activates the daemon
[ "$(systemctl is-active gpuswitchd.service)" = active ] && result daemon-under-its-unit PASS \
        || result daemon-under-its-unit FAIL "$(systemctl is-active gpuswitchd.service)"

n=${#SUBJECTS[@]}
for ((i = 0; i < ROUNDS; i++)); do
        order=("${SUBJECTS[@]}")
        for ((k = n - 1; k > 0; k--)); do   # Fisher-Yates
                j=$((RANDOM % (k + 1))); x=${order[k]}; order[k]=${order[j]}; order[j]=$x
        done
        for s in "${order[@]}"; do one_round_trip "$s" 1; done
done

# ---- figures ------------------------------------------------------------------
stats() { # USEC... -> "median min max" in ms
        printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {
                m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
                printf "%.1f %.1f %.1f\n", m / 1000, v[1] / 1000, v[NR] / 1000 }'
}
declare -A MED
read -r floor_med _ < <(stats ${TIMES[floor]})
echo "BENCH switch latency, QEMU guest (TCG, $(nproc) vCPUs): round trip host -> vfio -> host of the $(wc -w <<< "$FNS") functions" \
        "of $SLOT, median of $ROUNDS rounds (min-max), one boot, subjects interleaved in random order"
for s in "${SUBJECTS[@]}"; do
        read -r med lo hi < <(stats ${TIMES[$s]})
        read -r mv _ < <(stats ${TO_VFIO[$s]})
        read -r mh _ < <(stats ${TO_HOST[$s]})
        MED[$s]=$med
        echo "$s: round trips in ms, in order: $(printf '%s\n' ${TIMES[$s]} | awk '{printf "%.0f ", $1 / 1000}')"
        printf 'BENCH   %-38s %8.1f ms (%.1f-%.1f)  to vfio %.1f + to host %.1f   %.2fx the floor\n' \
                "${LABEL[$s]}" "$med" "$lo" "$hi" "$mv" "$mh" "$(awk "BEGIN {print $med / $floor_med}")"
done
ratio() { awk "BEGIN {printf \"%.2f\", $1 / $2}"; }
yes_no() { awk "BEGIN {exit !($1)}" && echo yes || echo NO; }
g=${MED[gpuswitchctl]}
echo "BENCH   targets: gpuswitchctl within 1.2x of the floor: $(yes_no "$g <= 1.2 * $floor_med") ($(ratio "$g" "$floor_med")x);" \
        "faster than the pci-bind loop: $(yes_no "$g < ${MED[pci-bind]}") ($(ratio "$g" "${MED[pci-bind]}")x of it);" \
        "faster than driverctl: $(yes_no "$g < ${MED[driverctl]}") ($(ratio "$g" "${MED[driverctl]}")x of it)"

# ---- the fixed cost of a command, without a kernel write ---------------------
# What the round trips above pay twice besides the kernel's work: starting a
# process (the floor's own start, for comparison), and a whole gpuswitchctl
# switch that has nothing to move (start, bus, authorization, reading and
# planning in the daemon, the reply; no holder scan, no write).
median_of() { # N CMD...: the median wall clock of N runs, in ms
        local n=$1 t0 t1 v=(); shift
        for ((i = 0; i < n; i++)); do
                t0=$EPOCHREALTIME; "$@" >/dev/null 2>&1; t1=$EPOCHREALTIME
                v+=($(( $(usec $t1) - $(usec $t0) )))
        done
        read -r m _ < <(stats "${v[@]}"); echo "$m"
}
start_floor=$(median_of 15 "$FLOOR")                 # its usage error: a start and an exit
start_ctl=$(median_of 15 $CTL --version)
noop_ctl=$(median_of 15 $CTL host)
all_original || result noop-switch-moved-nothing FAIL "$(state)"
echo "BENCH   fixed cost of a command in this guest (median of 15): start and exit of the floor $start_floor ms," \
        "of gpuswitchctl $start_ctl ms; gpuswitchctl host with nothing to move $noop_ctl ms"

# ---- sanity: every subject moved every function and put it back ---------------
for s in "${SUBJECTS[@]}"; do
        [ -z "${BAD[$s]:-}" ] && result "$s-every-round-vfio-and-back" PASS \
                || result "$s-every-round-vfio-and-back" FAIL "${BAD[$s]}"
done
all_original && result gpu-back-on-its-drivers PASS "$(state)" || result gpu-back-on-its-drivers FAIL "$(state)"
nic_untouched && result nic-never-moved PASS || result nic-never-moved FAIL "$(drv $NIC)"
grep -v '^$' "$log" | sort | uniq -c | sort -rn | head -10
finish
