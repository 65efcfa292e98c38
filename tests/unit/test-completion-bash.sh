#!/bin/bash
# The bash completion of gpuswitchctl, driven as bash drives it (COMP_WORDS,
# COMP_CWORD, COMP_LINE, COMP_POINT; words split at ':' and '=' as
# COMP_WORDBREAKS splits them), once in a bare shell and once with the
# bash-completion package loaded.  GPU addresses come from a fake
# gpuswitchctl on PATH that prints a known --json status.  The commands and
# the modes each takes are read from gpuswitchctl's verbs[] table, so a
# command added there must be completed too.
#   test-completion-bash.sh COMPLETION_FILE GPUSWITCHCTL_C
set -euo pipefail

comp=$(realpath "${1:?usage: test-completion-bash.sh COMPLETION_FILE GPUSWITCHCTL_C}")
client=${2:?usage: test-completion-bash.sh COMPLETION_FILE GPUSWITCHCTL_C}
mode=${3:-}

if [ -z "$mode" ]; then
        tmp=$(mktemp -d)
        trap 'rm -rf "$tmp"' EXIT
        # { "plan", 2, 3, "vfio host", false, verb_plan } -> "plan vfio host"
        sed -n '/static const Verb verbs\[\]/,/^};/p' "$client" |
                sed -n 's/^[[:space:]]*{ *"\([^"]*\)", *[0-9]*, *[0-9]*, *\(NULL\|"\([^"]*\)"\),.*/\1 \3/p' \
                > "$tmp/verbs"
        [ "$(wc -l < "$tmp/verbs")" -ge 9 ] || { echo "FAIL: verbs[] of $client not read: $(cat "$tmp/verbs")"; exit 1; }
        echo "verbs[] of gpuswitchctl.c: $(cut -d' ' -f1 "$tmp/verbs" | tr '\n' ' ')"
        # Two GPUs of four and two functions: only the slots may be offered.
        cat > "$tmp/status.json" <<'EOF'
{
  "gpus" : [
    {
      "address" : "0000:0a:00",
      "object" : "/org/gpuswitch1/gpu/0000_0a_00",
      "name" : "TU104 [GeForce RTX 2070 SUPER]",
      "mode" : "host",
      "functions" : [
        { "address" : "0000:0a:00.0", "class" : "0x030000", "driver" : "nvidia" },
        { "address" : "0000:0a:00.1", "class" : "0x040300", "driver" : "snd_hda_intel" },
        { "address" : "0000:0a:00.2", "class" : "0x0c0330", "driver" : "xhci_hcd" },
        { "address" : "0000:0a:00.3", "class" : "0x0c8000", "driver" : null }
      ]
    },
    {
      "address" : "0000:0b:00",
      "object" : "/org/gpuswitch1/gpu/0000_0b_00",
      "name" : "GA102",
      "mode" : "vfio",
      "functions" : [
        { "address" : "0000:0b:00.0", "class" : "0x030000", "driver" : "vfio-pci" },
        { "address" : "0000:0b:00.1", "class" : "0x040300", "driver" : "vfio-pci" }
      ]
    }
  ]
}
EOF
        mkdir "$tmp/bin"
        cat > "$tmp/bin/gpuswitchctl" <<'EOF'
#!/bin/bash
echo "$*" >> "$FAKE_DIR/calls"
if [ -e "$FAKE_DIR/down" ]; then
        echo '{ "error" : "org.freedesktop.DBus.Error.ServiceUnknown", "message" : "x" }'
        echo "gpuswitchctl: cannot reach gpuswitchd on the system bus: x" >&2
        exit 1
fi
case $1 in -H|-M) shift 2 ;; --host=*|--machine=*) shift ;; esac   # the same GPUs on any host
[ "$*" = "--json status" ] || { echo "fake gpuswitchctl: unexpected arguments: $*" >&2; exit 2; }
cat "$FAKE_DIR/status.json"
EOF
        chmod +x "$tmp/bin/gpuswitchctl"
        rc=0
        FAKE_DIR=$tmp PATH=$tmp/bin:$PATH bash --norc --noprofile "$0" "$comp" "$client" plain || rc=1
        if [ -r /usr/share/bash-completion/bash_completion ]; then
                FAKE_DIR=$tmp PATH=$tmp/bin:$PATH bash --norc --noprofile "$0" "$comp" "$client" bash-completion || rc=1
        else
                echo "SKIP: with bash-completion: /usr/share/bash-completion/bash_completion not installed"
        fi
        exit $rc
fi

# ---- inner: one shell, the completion loaded -------------------------------
set +eu    # bash-completion is not written for set -eu
if [ "$mode" = bash-completion ]; then
        # shellcheck disable=SC1091
        . /usr/share/bash-completion/bash_completion
        declare -F _init_completion >/dev/null || { echo "FAIL [$mode]: bash-completion did not load"; exit 1; }
fi
# shellcheck disable=SC1090
. "$comp"

pass=0 failed=0
# Splits LINE as bash does (whitespace, then ':' and '=' as words of their
# own), completes at its end, and compares COMPREPLY, sorted, with WANT.
expect() { # NAME LINE WANT...
        local name=$1 line=$2; shift 2
        local want got w
        COMP_WORDS=()
        read -ra ws <<< "$line"
        for w in "${ws[@]}"; do
                # "0000:0a:00" -> 0000 : 0a : 00, "--timeout=5" -> --timeout = 5,
                # "alice@host" -> alice @ host unless bash-completion took '@'
                # out of COMP_WORDBREAKS
                local breaks=":="
                [[ $COMP_WORDBREAKS == *@* ]] && breaks+="@"
                while [[ $w == *["$breaks"]* ]]; do
                        local head=${w%%["$breaks"]*}
                        [ -n "$head" ] && COMP_WORDS+=("$head")
                        COMP_WORDS+=("${w:${#head}:1}")
                        w=${w:${#head}+1}
                done
                [ -n "$w" ] && COMP_WORDS+=("$w")
        done
        # a line ending in a blank completes a new, empty word
        [[ $line == *" " ]] && COMP_WORDS+=("")
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        COMP_LINE=$line
        COMP_POINT=${#line}
        COMPREPLY=()
        local out
        out=$(_gpuswitchctl 2>&1; printf '%s\n' "${COMPREPLY[@]}" > "$FAKE_DIR/reply")
        got=$(sed '/^$/d' "$FAKE_DIR/reply" | sort | tr '\n' ' ')
        want=$(printf '%s\n' "$@" | sed '/^$/d' | sort | tr '\n' ' ')
        if [ -n "$out" ]; then
                echo "FAIL [$mode] $name: printed '$out'"; failed=$((failed + 1))
        elif [ "$got" = "$want" ]; then
                echo "PASS [$mode] $name"; pass=$((pass + 1))
        else
                echo "FAIL [$mode] $name: '$line' -> [$got] want [$want]"; failed=$((failed + 1))
        fi
}

verdict() { # NAME DETAIL CMD...: PASS when CMD succeeds
        local name=$1 detail=$2; shift 2
        if "$@"; then
                echo "PASS [$mode] $name"; pass=$((pass + 1))
        else
                echo "FAIL [$mode] $name: $detail"; failed=$((failed + 1))
        fi
}
registered() { complete -p gpuswitchctl | grep -q -- '-F _gpuswitchctl'; }
verdict registered "$(complete -p gpuswitchctl 2>&1)" registered

mapfile -t verbs < <(cut -d' ' -f1 "$FAKE_DIR/verbs")
longs=(--help --version --json --force --keep-holders --no-ask-password --timeout= --quiet --host= --machine=)
rm -f "$FAKE_DIR/calls"
expect verbs "gpuswitchctl " "${verbs[@]}"
expect verbs-prefix "gpuswitchctl s" status set-default
expect verbs-after-options "gpuswitchctl --json -q h" host holders
expect options "gpuswitchctl --" "${longs[@]}"
expect options-all "gpuswitchctl -" -h -q -H -M "${longs[@]}"
expect option-prefix "gpuswitchctl --no" --no-ask-password
expect option-timeout "gpuswitchctl --ti" --timeout=
expect options-after-verb "gpuswitchctl vfio --f" --force
expect keep-holders-after-verb "gpuswitchctl vfio --k" --keep-holders
expect timeout-value "gpuswitchctl --timeout="
expect timeout-value-separate "gpuswitchctl --timeout "
verdict daemon-not-asked-for-verbs "$(cat "$FAKE_DIR/calls" 2>&1)" test ! -s "$FAKE_DIR/calls"
# each command: its modes (as verbs[] lists them), then the GPU, then nothing
while read -r v modes; do
        if [ -n "$modes" ]; then
                read -ra m <<< "$modes"
                expect "modes-$v" "gpuswitchctl $v " "${m[@]}"
                expect "gpus-$v" "gpuswitchctl $v ${m[0]} " 0000:0a:00 0000:0b:00
                expect "nothing-after-gpu-$v" "gpuswitchctl $v ${m[0]} 0000:0a:00 "
        else
                expect "gpus-$v" "gpuswitchctl $v " 0000:0a:00 0000:0b:00
                expect "nothing-after-gpu-$v" "gpuswitchctl $v 0000:0a:00 "
        fi
done < "$FAKE_DIR/verbs"
expect plan-mode-prefix "gpuswitchctl plan v" vfio
expect set-default-mode-prefix "gpuswitchctl --json set-default k" keep
expect gpus-after-timeout "gpuswitchctl --timeout 30 --json host " 0000:0a:00 0000:0b:00
expect gpus-after-timeout-eq "gpuswitchctl --timeout=30 vfio " 0000:0a:00 0000:0b:00
verdict daemon-asked-json-status "$(cat "$FAKE_DIR/calls" 2>&1)" grep -qx -- "--json status" "$FAKE_DIR/calls"
# readline replaces what follows the last ':': the reply is the rest
expect gpus-prefix "gpuswitchctl vfio 0000:0" 0a:00 0b:00
expect gpus-prefix-colon "gpuswitchctl vfio 0000:" 0a:00 0b:00
expect gpus-prefix-unique "gpuswitchctl vfio 0000:0b" 0b:00
expect gpus-prefix-last "gpuswitchctl plan host 0000:0a:" 00
expect gpus-prefix-none "gpuswitchctl vfio 0000:0c"
expect unknown-verb "gpuswitchctl frobnicate "
# -H and -M: their values are no verbs, and they go on to the call that
# lists the GPUs; hosts from HOSTFILE (bash's own and bash-completion's)
HOSTFILE=$FAKE_DIR/hosts
printf '192.0.2.7 gpu-box.lab.example\n192.0.2.8 gpu-rack.lab.example\n' > "$HOSTFILE"
expect host-names "gpuswitchctl -H gpu-b" gpu-box.lab.example
expect host-names-all "gpuswitchctl --host gpu-" gpu-box.lab.example gpu-rack.lab.example
expect host-eq "gpuswitchctl --host=gpu-r" gpu-rack.lab.example
# readline replaces what follows '@' when it splits words there
if [[ $COMP_WORDBREAKS == *@* ]]; then at_reply=gpu-box.lab.example; else at_reply=alice@gpu-box.lab.example; fi
expect host-user-at "gpuswitchctl -H alice@gpu-b" $at_reply
expect host-then-verbs "gpuswitchctl -H alice@gpu-box s" status set-default
expect machine-then-modes "gpuswitchctl -M vm1 plan " vfio host
expect option-host "gpuswitchctl --ho" --host=
: > "$FAKE_DIR/calls"
expect host-gpus "gpuswitchctl -H alice@gpu-box vfio " 0000:0a:00 0000:0b:00
expect host-eq-gpus "gpuswitchctl --host=alice@gpu-box:2222 holders " 0000:0a:00 0000:0b:00
expect machine-gpus "gpuswitchctl vfio --machine vm1 " 0000:0a:00 0000:0b:00
want_calls=$'-H alice@gpu-box --json status\n--host=alice@gpu-box:2222 --json status\n-M vm1 --json status'
verdict transport-passed-on "$(cat "$FAKE_DIR/calls" 2>&1)" test "$(cat "$FAKE_DIR/calls")" = "$want_calls"
touch "$FAKE_DIR/down"
expect daemon-down-quiet "gpuswitchctl vfio "
expect daemon-down-modes "gpuswitchctl plan " vfio host
rm -f "$FAKE_DIR/down"

echo "[$mode] $pass passed, $failed failed"
[ "$failed" -eq 0 ]
