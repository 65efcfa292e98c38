# fish completion for gpuswitchctl(1)
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# GPU addresses come from the daemon; when it cannot be reached they are
# simply not offered.

# -H HOST or -M CONTAINER of the command line, for the call that lists the
# GPUs: those of that host or container.
function __gpuswitchctl_transport
    set -l words (commandline -opc)
    set -e words[1]
    set -l transport
    for i in (seq (count $words))
        switch $words[$i]
            case -H --host -M --machine
                set -q words[(math $i + 1)]; or continue
                set transport (string replace -r -- '^--host$' -H $words[$i] | string replace -r -- '^--machine$' -M) $words[(math $i + 1)]
            case '--host=?*' '--machine=?*' '-H?*' '-M?*'
                set transport $words[$i]
        end
    end
    string join \n -- $transport
end

# The slot addresses of the managed GPUs ("0000:0a:00"), one a line; a
# function's address ("0000:0a:00.0") does not match.
function __gpuswitchctl_gpus
    set -l timeout
    command -q timeout; and set timeout timeout 5
    $timeout gpuswitchctl (__gpuswitchctl_transport) --json status 2>/dev/null </dev/null |
        string match -r -a -g '"address" *: *"([0-9A-Fa-f]+:[0-9A-Fa-f]+:[0-9A-Fa-f]+)"'
end

# The words after the verb, options and the values of separate "--timeout
# SEC", "-H HOST", "-M CONTAINER" left out: the verb first.
function __gpuswitchctl_args
    set -l words (commandline -opc)
    set -e words[1]
    set -l after_timeout 0
    for w in $words
        if test $after_timeout = 1
            set after_timeout 0
        else if contains -- $w --timeout -H --host -M --machine
            set after_timeout 1
        else if string match -q -- '-*' $w
            continue
        else
            echo $w
        end
    end
end

function __gpuswitchctl_no_verb
    test (count (__gpuswitchctl_args)) -eq 0
end

# __gpuswitchctl_at VERB N: the verb is VERB and N arguments follow it.
function __gpuswitchctl_at
    set -l args (__gpuswitchctl_args)
    test (count $args) -eq (math $argv[2] + 1); and test "$args[1]" = $argv[1]
end

# Where a GPU may come: the one argument of most verbs, the second of plan
# and set-default.
function __gpuswitchctl_wants_gpu
    set -l args (__gpuswitchctl_args)
    switch (count $args)
        case 1
            contains -- $args[1] status vfio host nvidia holders doctor monitor
        case 2
            contains -- $args[1] plan set-default
        case '*'
            return 1
    end
end

complete -c gpuswitchctl -f

complete -c gpuswitchctl -n __gpuswitchctl_no_verb -a status -d 'Show the managed GPUs'
complete -c gpuswitchctl -n __gpuswitchctl_no_verb -a vfio -d 'Move every function of the GPU to vfio-pci'
complete -c gpuswitchctl -n __gpuswitchctl_no_verb -a host -d 'Move every function back to its host driver'
complete -c gpuswitchctl -n __gpuswitchctl_no_verb -a nvidia -d 'Like host, checking that the host driver is nvidia'
complete -c gpuswitchctl -n __gpuswitchctl_no_verb -a plan -d 'Show what switching to MODE would do'
complete -c gpuswitchctl -n __gpuswitchctl_no_verb -a holders -d 'Show the processes that hold the GPU'
complete -c gpuswitchctl -n __gpuswitchctl_no_verb -a doctor -d 'Check the setup'
complete -c gpuswitchctl -n __gpuswitchctl_no_verb -a monitor -d 'Follow mode changes and switches as they happen'
complete -c gpuswitchctl -n __gpuswitchctl_no_verb -a set-default -d 'The mode applied at boot'

complete -c gpuswitchctl -n '__gpuswitchctl_at plan 0' -a 'vfio host'
complete -c gpuswitchctl -n '__gpuswitchctl_at set-default 0' -a 'host vfio keep'
complete -c gpuswitchctl -n __gpuswitchctl_wants_gpu -a '(__gpuswitchctl_gpus)' -d GPU

complete -c gpuswitchctl -s h -l help -d 'Show this help'
complete -c gpuswitchctl -l version -d 'Show the version'
complete -c gpuswitchctl -l json -d 'Machine-readable output'
complete -c gpuswitchctl -l force -d 'End the processes holding the GPU, then switch'
complete -c gpuswitchctl -l keep-holders -d 'Switch while processes hold the GPU, if none blocks'
complete -c gpuswitchctl -l no-ask-password -d 'Do not ask for a password (polkit)'
complete -c gpuswitchctl -l timeout -x -d 'Give up waiting for a switch after SEC seconds'
complete -c gpuswitchctl -s q -l quiet -d 'Print nothing on success'
complete -c gpuswitchctl -s H -l host -x -a '(__fish_complete_user_at_hosts)' -d 'Switch the GPUs of a remote host (ssh)'
complete -c gpuswitchctl -s M -l machine -x -a '(__fish_systemd_machines)' -d 'Switch the GPUs of a local container'
