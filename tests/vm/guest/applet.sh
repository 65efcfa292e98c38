#!/bin/bash
# The README's desktop-applet call sequences (busctl and gpuswitchctl, then gdbus), run as
# written there, with the guest's GPU address in place of 0000:0a:00, as a
# user whom the example polkit group rule allows.  In the QEMU guest only.
. "$(dirname "$0")/../guest-lib.sh"
. "$(dirname "$0")/../gpu-lib.sh"
README=$(cd "$(dirname "$0")/../../.." && pwd)/README.md

configure "" "AllowBootVga=yes"
install -m644 /usr/share/doc/gpuswitch/examples/50-gpuswitch-group.rules /etc/polkit-1/rules.d/
usermod -aG gpuswitch alice
sleep 1

# The fenced sh blocks of the "### Desktop applets" section, in order.
blocks=$(awk '/^### Desktop applets/ {in_section = 1; next} in_section && /^##/ {exit}
        in_section && /^```sh$/ {n++; next} in_section && /^```$/ {next}
        in_section && n && /^(busctl|gdbus|gpuswitchctl) / {print n "\t" $0}' "$README")
[ "$(echo "$blocks" | cut -f1 | sort -u | tr '\n' ' ')" = "1 2 " ] && [ "$(echo "$blocks" | wc -l)" = 11 ] \
        && result readme-has-two-sequences PASS || result readme-has-two-sequences FAIL "$blocks"

run_sequence() { # N: the README's block N, line by line, as alice
        local n=$1 line i=0 mon=
        while IFS=$'\t' read -r _ line; do
                i=$((i + 1))
                line=${line//0000:0a:00/$SLOT}; line=${line//0000_0a_00/${SLOT//:/_}}
                if [[ $line == *" monitor "* || $line == *" monitor" ]]; then
                        # followed in the background until the sequence is done
                        as_user alice timeout 15 bash -c "$line" >/tmp/applet-monitor-$n.log 2>&1 & mon=$!
                        sleep 1.5
                        continue
                fi
                echo "\$ $line"
                if out=$(as_user alice timeout 60 bash -c "$line" 2>&1); then
                        echo "$out" | sed 's/^/    /' | head -12
                        result applet-$n-line-$i PASS
                else
                        result applet-$n-line-$i FAIL "$out"
                fi
        done < <(echo "$blocks" | awk -F'\t' -v n="$n" '$1 == n')
        sleep 1; [ -n "$mon" ] && { kill $mon 2>/dev/null; wait $mon 2>/dev/null; }
}

run_sequence 1
all_on vfio-pci && result applet-busctl-switched-to-vfio PASS "$(state)" || result applet-busctl-switched-to-vfio FAIL "$(state)"
grep -q '"event":"mode","mode":"switching"' /tmp/applet-monitor-1.log && grep -q '"event":"step"' /tmp/applet-monitor-1.log \
        && result applet-busctl-saw-changes PASS || result applet-busctl-saw-changes FAIL "$(head -20 /tmp/applet-monitor-1.log)"

run_sequence 2
all_original && result applet-gdbus-switched-back PASS "$(state)" || result applet-gdbus-switched-back FAIL "$(state)"
grep -q "PropertiesChanged" /tmp/applet-monitor-2.log && grep -q "'switching'" /tmp/applet-monitor-2.log \
        && grep -q "'Step'" /tmp/applet-monitor-2.log \
        && result applet-gdbus-saw-changes PASS || result applet-gdbus-saw-changes FAIL "$(head -20 /tmp/applet-monitor-2.log)"
finish
