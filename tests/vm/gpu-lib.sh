# Sourced by the daemon's guest tests (guest/*.sh) after guest-lib.sh: the
# GPU's functions, their drivers as the test found them, and the checks on
# them.
CTL=gpuswitchctl
read -r VGA HDA XHCI EDU < <(gpu_fns)
NIC=$(nic_bdf)
SLOT=${VGA%.*}
FNS="$VGA $HDA $XHCI $EDU"
OBJ=/org/gpuswitch1/gpu/${SLOT//:/_}
declare -A ORIG
for f in $FNS $NIC; do ORIG[$f]=$(drv $f); done
echo "GPU slot $SLOT: $VGA=${ORIG[$VGA]} $HDA=${ORIG[$HDA]} $XHCI=${ORIG[$XHCI]} $EDU=${ORIG[$EDU]}; NIC $NIC=${ORIG[$NIC]}"

all_on() { # DRIVER: every GPU function on it
        local f; for f in $FNS; do [ "$(drv $f)" = "$1" ] || return 1; done; }
all_original() { # every function on its original driver, no driver_override left
        local f; for f in $FNS; do
                [ "$(drv $f)" = "${ORIG[$f]}" ] || return 1
                [ "$(override $f)" = "(null)" ] || return 1
        done; }
state() { local f; for f in $FNS; do printf '%s=%s[%s] ' "$f" "$(drv $f)" "$(override $f)"; done; }
# the exit code of a command in $RC, its output in $OUT
run() { OUT=$("$@" 2>&1); RC=$?; echo "\$ $* -> rc=$RC"; [ -n "$OUT" ] && echo "$OUT" | sed 's/^/    /'; return 0; }
expect_rc() { # NAME RC: the last run's exit code
        [ "$RC" = "$2" ] && result "$1" PASS "rc=$RC" || result "$1" FAIL "rc=$RC want $2: $OUT"; }
prop() { busctl --system --timeout=2 get-property org.gpuswitch1 "$OBJ" org.gpuswitch1.Gpu "$1" 2>&1; }
# the config: extra lines for [Daemon], then for the GPU's section
configure() { # DAEMON_LINES GPU_LINES
        mkdir -p /etc/gpuswitch
        printf '[Daemon]\nGpus=%s\n%b\n[Gpu %s]\n%b\n' "$SLOT" "${1:-}" "$SLOT" "${2:-}" > /etc/gpuswitch/gpuswitch.conf
}
# A stand-in for nvidia-persistenced under systemd: a service holding the
# stand-in's node, started.  UNIT: its name (nvidia-persistenced.service).
persistenced_standin() {
        cat > "/etc/systemd/system/$1" <<UNIT
[Unit]
Description=stand-in for nvidia-persistenced: holds the GPU's node
[Service]
ExecStart=/bin/bash -c 'exec sleep infinity < /dev/gpuswitch-test0'
UNIT
        systemctl daemon-reload
        systemctl start "$1"
}
