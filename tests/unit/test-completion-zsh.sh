#!/bin/bash
# The zsh completion of gpuswitchctl: loaded by compinit from a throwaway
# ZDOTDIR, then driven in an interactive zsh on a pseudo-terminal (zpty):
# a line is typed, Tab pressed, and the matches the completion system
# offered are read back from a compadd wrapper.  GPU addresses come from a
# fake gpuswitchctl on PATH.  Exit 77 (skipped) without zsh.
#   test-completion-zsh.sh COMPLETION_FILE
set -euo pipefail

comp=$(realpath "${1:?usage: test-completion-zsh.sh COMPLETION_FILE}")
command -v zsh >/dev/null || { echo "SKIP: zsh is not installed"; exit 77; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/fpath" "$tmp/bin" "$tmp/zdotdir"
cp "$comp" "$tmp/fpath/_gpuswitchctl"

cat > "$tmp/bin/gpuswitchctl" <<'EOF'
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
EOF
chmod +x "$tmp/bin/gpuswitchctl"

# The interactive shell's setup: compinit on our fpath, every match that
# reaches compadd recorded, Ctrl-T writes an end marker and clears the line.
cat > "$tmp/zdotdir/.zshrc" <<'EOF'
PS1='%# '
unsetopt beep
fpath=($TEST_FPATH $fpath)
autoload -Uz compinit && compinit -u -d $ZDOTDIR/.zcompdump
(( $+functions[_gpuswitchctl] )) && print -r -- "LOADED $_comps[gpuswitchctl]" >> $ZDOTDIR/hits
zstyle ':completion:*' list-prompt ''
zstyle ':completion:*' select-prompt ''
compadd() {
        # calls that only ask (-O, -A, -D) are not offers
        if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then
                builtin compadd "$@"
                return
        fi
        local -a hits
        builtin compadd -A hits "$@"
        (( $#hits )) && print -rl -- "HIT "${^hits} >> $ZDOTDIR/hits
        builtin compadd "$@"
}
_test_done() { print -r -- DONE >> $ZDOTDIR/hits; BUFFER=; zle redisplay; }
zle -N _test_done
bindkey '^T' _test_done
bindkey '^I' complete-word
EOF

cat > "$tmp/drive.zsh" <<'EOF'
zmodload zsh/zpty || { print "FAIL: no zsh/zpty"; exit 1 }
hits=$ZDOTDIR/hits
zpty -b shell zsh -i
pass=0 failed=0

# Waits (at most 10 s) for the marker, then the matches, sorted, on one line.
wait_done() {
        local i
        for i in {1..100}; do
                [[ -r $hits ]] && grep -qx DONE $hits && break
                zpty -r -t shell junk 2>/dev/null    # keep the pty drained
                sleep 0.1
        done
        grep -qx DONE $hits 2>/dev/null || return 1
        REPLY=${(j: :)${(o)${(M)${(f)"$(<$hits)"}:#HIT *}#HIT }}
}

# The shell is up when the loaded marker is there.
for i in {1..100}; do [[ -s $hits ]] && break; zpty -r -t shell junk 2>/dev/null; sleep 0.1; done
if grep -q '^LOADED _gpuswitchctl$' $hits 2>/dev/null; then
        print "PASS loaded-by-compinit"; (( pass++ ))
else
        print "FAIL loaded-by-compinit: $(cat $hits 2>&1)"; (( failed++ ))
fi

expect() { # NAME LINE WANT...
        local name=$1 line=$2; shift 2
        local want=${(j: :)${(o)@}}
        : > $hits
        zpty -w -n shell "$line"$'\t'$'\x14'
        if ! wait_done; then
                print "FAIL $name: no answer to '$line'"; (( failed++ ))
        elif [[ $REPLY == $want ]]; then
                print "PASS $name"; (( pass++ ))
        else
                print "FAIL $name: '$line' -> [$REPLY] want [$want]"; (( failed++ ))
        fi
}

expect verbs "gpuswitchctl " status vfio host nvidia plan holders doctor monitor set-default
expect verbs-prefix "gpuswitchctl s" status set-default
expect options "gpuswitchctl --" --help --version --json --force --keep-holders --no-ask-password --timeout --quiet --host --machine
expect option-prefix "gpuswitchctl --no" --no-ask-password
expect plan-modes "gpuswitchctl plan " vfio host
expect set-default-modes "gpuswitchctl set-default " host vfio keep
expect gpus-vfio "gpuswitchctl vfio " 0000:0a:00 0000:0b:00
expect gpus-status "gpuswitchctl --json status " 0000:0a:00 0000:0b:00
expect gpus-plan "gpuswitchctl plan host " 0000:0a:00 0000:0b:00
expect gpus-set-default "gpuswitchctl set-default keep " 0000:0a:00 0000:0b:00
expect gpus-prefix "gpuswitchctl holders 0000:0b" 0000:0b:00
expect no-second-gpu "gpuswitchctl vfio 0000:0a:00 "
expect options-after-command "gpuswitchctl vfio --f" --force
expect keep-holders-after-command "gpuswitchctl vfio --k" --keep-holders
expect gpus-after-option "gpuswitchctl vfio --force " 0000:0a:00 0000:0b:00
expect gpus-after-timeout "gpuswitchctl host --timeout 30 " 0000:0a:00 0000:0b:00
expect modes-after-option "gpuswitchctl plan -q " vfio host
expect gpus-after-leading-timeout "gpuswitchctl --timeout 30 --json host " 0000:0a:00 0000:0b:00
expect verbs-after-options "gpuswitchctl --json -q h" host holders
# -H and -M: their values are no verbs, and they go on to the call that
# lists the GPUs; hosts as zsh's ssh completion knows them (hosts style)
zpty -w shell "zstyle ':completion:*' hosts gpu-box.lab.example gpu-rack.lab.example"
expect host-names "gpuswitchctl -H gpu-" gpu-box.lab.example gpu-rack.lab.example
expect host-user-at "gpuswitchctl --host=alice@gpu-b" gpu-box.lab.example
expect host-then-verbs "gpuswitchctl -H alice@gpu-box s" status set-default
expect machine-then-modes "gpuswitchctl -M vm1 plan " vfio host
expect host-excludes-machine "gpuswitchctl -H alice@gpu-box --m" 
: > $FAKE_DIR/calls
expect host-gpus "gpuswitchctl -H alice@gpu-box vfio " 0000:0a:00 0000:0b:00
expect host-eq-gpus "gpuswitchctl --host=alice@gpu-box:2222 holders " 0000:0a:00 0000:0b:00
expect machine-gpus "gpuswitchctl vfio --machine vm1 " 0000:0a:00 0000:0b:00
want_calls=$'-H alice@gpu-box --json status\n-H alice@gpu-box:2222 --json status\n-M vm1 --json status'
if [[ "$(<$FAKE_DIR/calls)" == "$want_calls" ]]; then
        print "PASS transport-passed-on"; (( pass++ ))
else
        print "FAIL transport-passed-on: ${(q+)$(<$FAKE_DIR/calls)} want ${(q+)want_calls}"; (( failed++ ))
fi
touch $FAKE_DIR/down
expect daemon-down "gpuswitchctl vfio "
rm -f $FAKE_DIR/down
if grep -qx -- '--json status' $FAKE_DIR/calls; then
        print "PASS daemon-asked-json-status"; (( pass++ ))
else
        print "FAIL daemon-asked-json-status: $(cat $FAKE_DIR/calls 2>&1)"; (( failed++ ))
fi

zpty -d shell
print "$pass passed, $failed failed"
(( failed == 0 ))
EOF

# -f: none of this machine's zsh startup files in the driver; the shell it
# drives reads only $ZDOTDIR/.zshrc (and the system's /etc/zsh files).
FAKE_DIR=$tmp ZDOTDIR=$tmp/zdotdir TEST_FPATH=$tmp/fpath PATH=$tmp/bin:$PATH \
        timeout 50 zsh -f "$tmp/drive.zsh"
