#!/bin/bash
# The fish completion of gpuswitchctl, asked as fish asks it when Tab is
# pressed (`complete -C LINE`), in a fish with no config of this machine.
# GPU addresses come from a fake gpuswitchctl on PATH that prints a known
# --json status.  The commands and the modes each takes are read from
# gpuswitchctl's verbs[] table and the options from its options[] table, so
# a command or an option added there must be completed too.  Exit 77
# (skipped) without fish.
#   test-completion-fish.sh COMPLETION_FILE GPUSWITCHCTL_C
set -euo pipefail

comp=$(realpath "${1:?usage: test-completion-fish.sh COMPLETION_FILE GPUSWITCHCTL_C}")
client=${2:?usage: test-completion-fish.sh COMPLETION_FILE GPUSWITCHCTL_C}
command -v fish >/dev/null || { echo "SKIP: fish is not installed"; exit 77; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/bin" "$tmp/empty"
cat > "$tmp/bin/gpuswitchctl" <<'FAKE'
#!/bin/bash
echo "$*" >> "$FAKE_DIR/calls"
[ -e "$FAKE_DIR/down" ] && { echo "gpuswitchctl: cannot reach gpuswitchd on the system bus" >&2; exit 1; }
case $1 in -H|-M) shift 2 ;; --host=*|--machine=*) shift ;; esac   # the same GPUs on any host
[ "$*" = "--json status" ] || exit 2
cat <<'JSON'
{
  "gpus" : [
    {
      "address" : "0000:0a:00",
      "functions" : [ { "address" : "0000:0a:00.0" }, { "address" : "0000:0a:00.1" } ]
    },
    {
      "address" : "0000:0b:00",
      "functions" : [ { "address" : "0000:0b:00.0" } ]
    }
  ]
}
JSON
FAKE
chmod +x "$tmp/bin/gpuswitchctl"

# { "plan", 2, 3, "vfio host", false, verb_plan } -> "plan vfio host"
sed -n '/static const Verb verbs\[\]/,/^};/p' "$client" |
        sed -n 's/^[[:space:]]*{ *"\([^"]*\)", *[0-9]*, *[0-9]*, *\(NULL\|"\([^"]*\)"\),.*/\1 \3/p' > "$tmp/verbs"
# { "no-ask-password", no_argument, NULL, ARG_NO_ASK_PASSWORD } -> "--no-ask-password"
sed -n '/static const struct option options\[\]/,/^[[:space:]]*};/p' "$client" |
        sed -n 's/^[[:space:]]*{ *"\([^"]*\)",.*/--\1/p' > "$tmp/options"
# { "quiet", no_argument, NULL, 'q' } -> "-q"
sed -n '/static const struct option options\[\]/,/^[[:space:]]*};/p' "$client" |
        sed -n "s/^[[:space:]]*{ *\"[^\"]*\",.*, *'\\(.\\)' *},*\$/-\\1/p" > "$tmp/shorts"
[ "$(wc -l < "$tmp/verbs")" -ge 9 ] || { echo "FAIL: verbs[] of $client not read"; exit 1; }
[ "$(wc -l < "$tmp/options")" -ge 7 ] || { echo "FAIL: options[] of $client not read"; exit 1; }
[ "$(wc -l < "$tmp/shorts")" -ge 2 ] || { echo "FAIL: the short options of $client not read"; exit 1; }

pass=0 failed=0
# What fish offers for LINE: the candidates, sorted, on one line.
offers() {
        cd "$tmp/empty"
        FAKE_DIR=$tmp PATH=$tmp/bin:$PATH HOME=$tmp XDG_CONFIG_HOME=$tmp/config \
                timeout 20 fish --no-config -c 'source $argv[1]; complete -C $argv[2]' "$comp" "$1" |
                cut -f1 | sort | paste -sd' '
}
expect() { # NAME LINE WANT...
        local name=$1 line=$2 got want
        shift 2
        want=$(printf '%s\n' "$@" | sed '/^$/d' | sort | paste -sd' ')
        got=$(offers "$line")
        if [ "$got" = "$want" ]; then
                echo "PASS $name"; pass=$((pass + 1))
        else
                echo "FAIL $name: '$line' -> [$got] want [$want]"; failed=$((failed + 1))
        fi
}

# shellcheck disable=SC2046 # one word a verb
expect verbs "gpuswitchctl " $(cut -d' ' -f1 "$tmp/verbs")
expect verbs-prefix "gpuswitchctl s" status set-default
# shellcheck disable=SC2046
expect options "gpuswitchctl --" $(cat "$tmp/options")
expect option-prefix "gpuswitchctl --no" --no-ask-password
# shellcheck disable=SC2046
expect short-options "gpuswitchctl -" $(cat "$tmp/shorts" "$tmp/options")
while read -r verb modes; do
        [ -n "$modes" ] || continue
        # shellcheck disable=SC2086 # the modes, one word each
        expect "$verb-modes" "gpuswitchctl $verb " $modes
        expect "$verb-gpus" "gpuswitchctl $verb ${modes%% *} " 0000:0a:00 0000:0b:00
done < "$tmp/verbs"
for verb in $(awk 'NF == 1' "$tmp/verbs"); do
        expect "$verb-gpus" "gpuswitchctl $verb " 0000:0a:00 0000:0b:00
done
expect gpus-prefix "gpuswitchctl holders 0000:0b" 0000:0b:00
expect no-second-gpu "gpuswitchctl vfio 0000:0a:00 "
expect options-after-command "gpuswitchctl vfio --f" --force
expect gpus-after-option "gpuswitchctl vfio --force " 0000:0a:00 0000:0b:00
expect gpus-after-timeout "gpuswitchctl host --timeout 30 " 0000:0a:00 0000:0b:00
expect gpus-after-timeout-value "gpuswitchctl --timeout=30 host " 0000:0a:00 0000:0b:00
expect no-timeout-candidates "gpuswitchctl --timeout "
expect modes-after-option "gpuswitchctl plan -q " vfio host
expect verbs-after-options "gpuswitchctl --json -q h" host holders
expect no-files "gpuswitchctl vfio 0000:0a:00 /"
# -H and -M: their values are no verbs, and they go on to the call that
# lists the GPUs; hosts as fish's ssh completion knows them
mkdir -p "$tmp/.ssh"
echo "gpu-box.lab.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBv0" > "$tmp/.ssh/known_hosts"
expect host-names "gpuswitchctl -H gpu-box" gpu-box.lab.example
expect host-user-at "gpuswitchctl --host alice@gpu-b" alice@gpu-box.lab.example
expect host-then-verbs "gpuswitchctl -H alice@gpu-box s" status set-default
expect machine-then-modes "gpuswitchctl -M vm1 plan " vfio host
: > "$tmp/calls"
expect host-gpus "gpuswitchctl -H alice@gpu-box vfio " 0000:0a:00 0000:0b:00
expect host-eq-gpus "gpuswitchctl --host=alice@gpu-box:2222 holders " 0000:0a:00 0000:0b:00
expect machine-gpus "gpuswitchctl vfio --machine vm1 " 0000:0a:00 0000:0b:00
want_calls=$'-H alice@gpu-box --json status\n--host=alice@gpu-box:2222 --json status\n-M vm1 --json status'
if [ "$(cat "$tmp/calls")" = "$want_calls" ]; then
        echo "PASS transport-passed-on"; pass=$((pass + 1))
else
        echo "FAIL transport-passed-on: $(cat "$tmp/calls")"; failed=$((failed + 1))
fi
touch "$tmp/down"
expect daemon-down "gpuswitchctl vfio "
rm -f "$tmp/down"
if grep -qx -- '--json status' "$tmp/calls"; then
        echo "PASS daemon-asked-json-status"; pass=$((pass + 1))
else
        echo "FAIL daemon-asked-json-status: $(cat "$tmp/calls" 2>&1)"; failed=$((failed + 1))
fi
echo "$pass passed, $failed failed"
[ "$failed" = 0 ]
