#!/bin/bash
# The man pages and the shell completions name everything the code accepts:
# every verb of gpuswitchctl's verbs[] table and every option of its getopt
# table, every check of doctor and event of monitor, every option of
# gpuswitchd and method and property of its bus API, every config key that
# daemon/config.c knows, every exit code.  Names are taken from the C sources, so a verb or a
# key added without its documentation fails here.
#   test-docs-coverage.sh SOURCE_DIR
set -euo pipefail

src=${1:?usage: test-docs-coverage.sh SOURCE_DIR}
ctl=$src/client/gpuswitchctl.c
daemon_main=$src/daemon/main.c
config=$src/daemon/config.c
doctor=("$src"/client/doctor*.c)
monitor=$src/client/monitor.c
api=$src/dbus/org.gpuswitch1.xml
errors=$src/common/errors.h
ctl_page=$src/man/gpuswitchctl.1.scd
daemon_page=$src/man/gpuswitchd.8.scd
conf_page=$src/man/gpuswitch.conf.5.scd
bash_comp=$src/shell-completion/bash/gpuswitchctl
zsh_comp=$src/shell-completion/zsh/_gpuswitchctl

failures=0
checks=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# The names in the first column of a C table: the lines from the one
# matching START to the "};" that closes it, each entry's first string.
table_names() { # FILE START-REGEX
        sed -n "/$2/,/^[[:space:]]*};/p" "$1" | sed -n 's/^[[:space:]]*{ *"\([^"]*\)".*/\1/p'
}
# The short options of getopt_long's option string: "hc:d" -> h c d.
short_options() { # FILE
        sed -n 's/.*getopt_long([^"]*"\([^"]*\)".*/\1/p' "$1" | tr -d ':' | grep -o .
}
# Every string in the known[] lists of config.c.
config_keys() {
        sed -n 's/.*known\[\] *= *{\(.*\)NULL *};.*/\1/p' "$config" | grep -o '"[^"]*"' | tr -d '"'
}
# doctor's check ids: check_new("iommu", ...), doctor_check_skipped("boot-vga", ...)
doctor_ids() {
        grep -ho '\(check_new\|doctor_check_skipped\)("[a-z0-9-]*"' "${doctor[@]}" | sed 's/.*("//; s/"$//' | sort -u
}
# monitor's events: print_event(mon, GPU, "driver", ...), string_change(mon, g, "mode", ...)
monitor_events() {
        grep -ho '\(print_event\|string_change\)([^,]*, [^,]*, "[a-z]*"' "$monitor" | sed 's/.*, "//; s/"$//' | sort -u
}
api_members() { # method|property
        sed -n "s/.*<$1 name=\"\([A-Za-z]*\)\".*/\1/p" "$api"
}
exit_codes() {
        sed -n 's/^[[:space:]]*GS_EXIT_[A-Z_]* *= *\([0-9]*\),.*/\1/p' "$errors"
}

# At least MIN names were found, so a broken extraction cannot pass for
# "nothing to check".
need() { # WHAT MIN NAMES...
        local what=$1 min=$2; shift 2
        [ $# -ge "$min" ] || { echo "FAIL: found only $# $what in the sources (want >= $min): extraction broken"; exit 1; }
        echo "$what: $*"
}
# FILE LABEL ERE: the page or script has a line matching ERE.
has() { # FILE WHAT ERE
        checks=$((checks + 1))
        grep -Eq -- "$3" "$1" || fail "$(basename "$1") does not document $2"
}
# A regex-safe copy of a name ("set-default", "check-config").
re() { printf '%s' "$1" | sed 's/[].[*^$\\/+?(){}|]/\\&/g'; }

mapfile -t verbs < <(table_names "$ctl" 'static const Verb verbs\[\]')
mapfile -t ctl_long < <(table_names "$ctl" 'static const struct option options\[\]')
mapfile -t ctl_short < <(short_options "$ctl")
mapfile -t daemon_long < <(table_names "$daemon_main" 'static const struct option options\[\]')
mapfile -t daemon_short < <(short_options "$daemon_main")
mapfile -t keys < <(config_keys)
mapfile -t codes < <(exit_codes)
mapfile -t checks_ids < <(doctor_ids)
mapfile -t events < <(monitor_events)
mapfile -t methods < <(api_members method)
mapfile -t properties < <(api_members property)
need "gpuswitchctl verbs" 6 "${verbs[@]}"
need "gpuswitchctl options" 7 "${ctl_long[@]}" "${ctl_short[@]}"
need "gpuswitchd options" 5 "${daemon_long[@]}" "${daemon_short[@]}"
need "config keys" 6 "${keys[@]}"
need "exit codes" 7 "${codes[@]}"
need "doctor checks" 10 "${checks_ids[@]}"
need "monitor events" 6 "${events[@]}"
need "bus methods" 6 "${methods[@]}"
need "bus properties" 10 "${properties[@]}"

for v in "${verbs[@]}"; do
        # a term of the COMMANDS list: "*plan* _MODE_ [_GPU_]"
        has "$ctl_page" "the command '$v'" "^\*$(re "$v")\*( |$)"
        has "$bash_comp" "the command '$v'" "(^|[ \"'])$(re "$v")([ \"']|$)"
        has "$zsh_comp" "the command '$v'" "^[[:space:]]*'?$(re "$v"):"
done
for o in "${ctl_long[@]}"; do
        has "$ctl_page" "--$o" "\*--$(re "$o")(\*|=)"
        has "$bash_comp" "--$o" "(^|[ \"'])--$(re "$o")(=?)([ \"']|$)"
        has "$zsh_comp" "--$o" "--$(re "$o")"
done
for o in "${ctl_short[@]}"; do
        has "$ctl_page" "-$o" "\*-$o\*"
        has "$zsh_comp" "-$o" "[{,'(]-${o}[,}[ ]"
done
for id in "${checks_ids[@]}"; do
        # an item of doctor's list: "- *iommu*: the IOMMU enabled"
        has "$ctl_page" "doctor's check '$id'" "^[[:space:]]*- \*$(re "$id")\*:"
done
for e in "${events[@]}"; do
        # an item of monitor's JSON events: '- "mode": "mode", "previous";'
        has "$ctl_page" "monitor's event '$e'" "^[[:space:]]*- \"$(re "$e")\":"
done
for o in "${daemon_long[@]}"; do
        has "$daemon_page" "--$o" "\*--$(re "$o")(\*|=)"
done
for o in "${daemon_short[@]}"; do
        has "$daemon_page" "-$o" "\*-$o\*"
done
for m in "${methods[@]}"; do
        has "$daemon_page" "the method $m" "\*$m\("
done
for p in "${properties[@]}"; do
        has "$daemon_page" "the property $p" "\*$p\*"
done
for k in "${keys[@]}"; do
        # a term of its section: "*DefaultMode=*"
        has "$conf_page" "the key $k=" "^\*$(re "$k")=\*$"
done
for c in "${codes[@]}"; do
        [ "$c" = 0 ] && continue
        has "$ctl_page" "exit status $c" "^\*$c\*$"
done

echo "$checks checks, $failures failed"
[ "$failures" -eq 0 ] || exit 1

# The checker itself: a copy of the tree with a command, an option and a key
# taken out of the pages must fail, naming each.
[ -z "${DOCS_COVERAGE_SELF_TEST:-}" ] || exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"/{client,daemon,common,man,shell-completion/bash,shell-completion/zsh}
cp "$ctl" "${doctor[@]}" "$monitor" "$tmp/client/"; cp "$daemon_main" "$config" "$tmp/daemon/"; cp "$errors" "$tmp/common/"; mkdir "$tmp/dbus"; cp "$api" "$tmp/dbus/"
cp "$bash_comp" "$tmp/shell-completion/bash/"; cp "$zsh_comp" "$tmp/shell-completion/zsh/"
grep -v '^\*nvidia\* ' "$ctl_page" | sed 's/\*--force\*/force/' > "$tmp/man/gpuswitchctl.1.scd"
cp "$daemon_page" "$tmp/man/"
grep -v '^\*HostDriver=\*$' "$conf_page" > "$tmp/man/gpuswitch.conf.5.scd"
if out=$(DOCS_COVERAGE_SELF_TEST=1 bash "$0" "$tmp" 2>&1); then
        echo "FAIL: self-test: a tree with undocumented names passed"; exit 1
fi
for w in "the command 'nvidia'" "--force" "the key HostDriver="; do
        grep -q -- "gpuswitch.*does not document $w" <<< "$out" || { echo "FAIL: self-test: missed $w: $out"; exit 1; }
done
echo "self-test: a command, an option and a key left undocumented are each caught"
