# Sourced by bench/vm/bus-latency.sh (in the guest) and bench/bus-host.sh (on
# this machine): bus-load runs against gpuswitchd and against bus-floor, the
# medians of their figures, and the BENCH lines that report them.
# The caller sets BUS_LOAD (the program), FLOOR (bus-floor's name), CLIENTS,
# CALLS, ROUNDS, DAEMON_PID, FLOOR_PID and LOAD_FAILED (a file that lists
# the runs that failed).

cpu_ns() { local t; read -r t _ <"/proc/$1/schedstat"; echo "$t"; }  # PID -> its main thread's time on a CPU
# One bus-load run: "P50 P99 CALLS_PER_S SWITCHING_PERCENT CPU_US_PER_CALL" on
# stdout; the CPU time is the serving process's main thread's, where the
# reads are answered.
load() { # DEST [BUS-LOAD ARGS...]
        local dest=$1 out rc server cpu0; shift
        [ "$dest" = "$FLOOR" ] && server=$FLOOR_PID || server=$DAEMON_PID
        cpu0=$(cpu_ns $server)
        out=$("$BUS_LOAD" --read --dest "$dest" --clients $CLIENTS --calls $CALLS --timeout 60 "$@" 2>&1)
        rc=$?
        echo "$dest $*: $(echo "$out" | grep -E '^(bus-load|all|Mode)' | tr '\n' ' ')" >&2
        if [ $rc != 0 ]; then
                echo "$dest $*" >>"$LOAD_FAILED"
                echo "bus-load --dest $dest $* failed (rc $rc):" >&2
                echo "$out" >&2
        fi
        echo "$out" | awk -v cpu0="$cpu0" -v cpu1="$(cpu_ns $server)" '
                /^bus-load:/ { for (i = 1; i <= NF; i++) if ($i ~ /^\(/) rate = substr($i, 2) }
                /^all / { p50 = $5; p99 = $9 }
                /^Mode replies:/ { gsub(",", ""); n = $4 + $6 + $8 + $10 + $12; sw = n ? 100 * $10 / n : 0 }
                /^bus-load:/ { for (i = 1; i <= NF; i++) if ($i == "calls" && $(i + 1) == "in") calls = $(i - 1) }
                END { printf "%s %s %s %.0f %.0f\n", p50, p99, rate, sw, calls ? (cpu1 - cpu0) / 1000 / calls : 0 }'
}
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
# ROUNDS runs against each side, alternating; the medians of each figure.
declare -A P50 P99 RATE SW CPU
compare() { # LABEL SIDES [BUS-LOAD ARGS...]: SIDES "daemon floor" or "daemon"
        local label=$1 sides=$2 side dest; shift 2
        local -A f50 f99 frate fsw fcpu
        for _ in $(seq $ROUNDS); do
                for side in $sides; do
                        [ $side = daemon ] && dest=org.gpuswitch1 || dest=$FLOOR
                        read -r a b c d e < <(load $dest "$@")
                        f50[$side]+="$a "; f99[$side]+="$b "; frate[$side]+="$c "; fsw[$side]+="$d "; fcpu[$side]+="$e "
                done
        done
        for side in $sides; do
                P50[$label.$side]=$(tr ' ' '\n' <<<"${f50[$side]}" | grep . | median)
                P99[$label.$side]=$(tr ' ' '\n' <<<"${f99[$side]}" | grep . | median)
                RATE[$label.$side]=$(tr ' ' '\n' <<<"${frate[$side]}" | grep . | median)
                SW[$label.$side]=$(tr ' ' '\n' <<<"${fsw[$side]}" | grep . | median)
                CPU[$label.$side]=$(tr ' ' '\n' <<<"${fcpu[$side]}" | grep . | median)
        done
}
show() { # LABEL DESCRIPTION
        local l=$1 line
        line=$(printf 'bus %-26s gpuswitchd p50 %6.2f p99 %7.2f ms, %s us CPU/call (%s calls/s)' "$2" \
                "${P50[$l.daemon]}" "${P99[$l.daemon]}" "${CPU[$l.daemon]}" "${RATE[$l.daemon]}")
        if [ -n "${P50[$l.floor]:-}" ]; then
                line+=$(printf ' | floor p50 %6.2f p99 %7.2f ms, %s us CPU/call | %sx, %sx, %sx the floor' \
                        "${P50[$l.floor]}" "${P99[$l.floor]}" "${CPU[$l.floor]}" \
                        "$(ratio "${P50[$l.daemon]}" "${P50[$l.floor]}")" "$(ratio "${P99[$l.daemon]}" "${P99[$l.floor]}")" \
                        "$(ratio "${CPU[$l.daemon]}" "${CPU[$l.floor]}")")
        fi
        echo "BENCH $line"
}
target() { # LABEL TARGET_MS WHERE: the p99 while switching against the target
        local p=${P99[$1.daemon]} v
        awk -v p="$p" -v t="$2" 'BEGIN { exit !(p < t) }' && v=met || v=missed
        echo "BENCH bus target p99 < $2 ms while switching ($1): gpuswitchd $p ms, $v" \
                "(the floor $3: ${P99[$1.floor]} ms)"
}
