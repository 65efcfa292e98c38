#!/bin/bash
# vmtest-seconds: 55
# Shell completion against the real daemon: in an interactive bash on a
# pseudo-terminal, as an ordinary user, with the bash-completion package
# loading the installed completion on demand, "gpuswitchctl vfio <TAB>"
# becomes the GPU's slot address (asked of gpuswitchd over the bus).  The
# same in zsh with its vendor-completions, and in fish with its
# vendor_completions.d.  Nothing is switched.
. "$(dirname "$0")/../guest-lib.sh"

. "$(dirname "$0")/../gpu-lib.sh"

configure

# complete_line SHELL LINE: types LINE and a Tab into SHELL on a pty as
# alice, then goes to the start of the line and makes it "echo COMPLETED
# LINE..." with Enter: the shell prints the line as completion left it.
# Prints that line (without the marker).
cat > /tmp/complete-line.py <<'EOF'
import os, pty, select, sys, time
shell, line = sys.argv[1], sys.argv[2]
argv = {"bash": ["bash", "--norc", "--noprofile", "-i"], "zsh": ["zsh", "-f", "-i"]}[shell]
setup = {
    # bash-completion as Debian's /etc/bash.bashrc loads it; the completion
    # itself comes from its on-demand loader
    "bash": "PS1='$ '; . /usr/share/bash-completion/bash_completion\n",
    # the system's fpath has /usr/share/zsh/vendor-completions
    "zsh": "PS1='$ '; autoload -Uz compinit && compinit -u -d /tmp/zcompdump-$UID\n",
}[shell]
pid, fd = pty.fork()
if pid == 0:
    os.environ["TERM"] = "dumb"
    os.execvp(argv[0], argv)
out = b""
def read_for(seconds, until=None, quiet=None):
    """Reads until UNTIL shows up, or (QUIET) output stops for that long
    after new output, or SECONDS pass."""
    global out
    end, start, last = time.time() + seconds, len(out), None
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                return
            if not data:
                return
            out += data
            last = time.time()
            if until and until in out[start:]:
                return
        elif quiet and last and time.time() - last > quiet:
            return
os.write(fd, setup.encode())
# the shell's answer, not the terminal's echo of the line typed ahead
os.write(fd, b"echo RE''ADY\n")
read_for(60, b"\nREADY\r\n")
# the line echoed, then a Tab: what completion inserts (or the bell when
# nothing matches) comes once the daemon has answered
os.write(fd, line.encode())
read_for(10, line.encode())
os.write(fd, b"\t")
read_for(30, quiet=0.5)
# Ctrl-A (start of line, emacs keys in both shells), the marker, Enter
os.write(fd, b"\x01echo COMPLETED \n")
read_for(15, b"\r\nCOMPLETED ")
read_for(2, b"\n$ ")
os.write(fd, b"exit\n")
read_for(5)
text = out.decode(errors="replace").replace("\r", "")
for l in text.split("\n"):
    if l.startswith("COMPLETED "):
        print(l[len("COMPLETED "):].rstrip())
        sys.exit(0)
sys.stderr.write("no COMPLETED line; the terminal showed:\n" + text + "\n")
sys.exit(1)
EOF
complete_line() { as_user alice python3 /tmp/complete-line.py "$@" 2>&1; }  # SHELL LINE

check completion-installed test -r /usr/share/bash-completion/completions/gpuswitchctl
check zsh-completion-installed test -r /usr/share/zsh/vendor-completions/_gpuswitchctl

# the daemon bus-activated and answering first: the completion's own call
# has a few seconds only
run as_user alice $CTL status
expect_rc status-as-alice 0

# ---- bash --------------------------------------------------------------------
got=$(complete_line bash "gpuswitchctl vfio ")
echo "bash: 'gpuswitchctl vfio <TAB>' -> '$got'"
[ "$got" = "gpuswitchctl vfio $SLOT" ] && result bash-vfio-tab-slot PASS "$got" \
        || result bash-vfio-tab-slot FAIL "got '$got' want 'gpuswitchctl vfio $SLOT'"

got=$(complete_line bash "gpuswitchctl plan vfio ${SLOT%:*}:")
echo "bash: 'gpuswitchctl plan vfio ${SLOT%:*}:<TAB>' -> '$got'"
[ "$got" = "gpuswitchctl plan vfio $SLOT" ] && result bash-colon-prefix-tab-slot PASS "$got" \
        || result bash-colon-prefix-tab-slot FAIL "got '$got' want 'gpuswitchctl plan vfio $SLOT'"

got=$(complete_line bash "gpuswitchctl set-default k")
[ "$got" = "gpuswitchctl set-default keep" ] && result bash-set-default-mode PASS "$got" \
        || result bash-set-default-mode FAIL "got '$got'"

# ---- zsh ---------------------------------------------------------------------
got=$(complete_line zsh "gpuswitchctl vfio ")
echo "zsh: 'gpuswitchctl vfio <TAB>' -> '$got'"
[ "$got" = "gpuswitchctl vfio $SLOT" ] && result zsh-vfio-tab-slot PASS "$got" \
        || result zsh-vfio-tab-slot FAIL "got '$got' want 'gpuswitchctl vfio $SLOT'"

# ---- fish --------------------------------------------------------------------
# fish autoloads the completion from its vendor_completions.d when asked
# (complete -C is what Tab asks)
check fish-completion-installed test -r /usr/share/fish/vendor_completions.d/gpuswitchctl.fish
got=$(as_user alice fish -c 'complete -C "gpuswitchctl vfio "' 2>&1 | cut -f1)
echo "fish: 'gpuswitchctl vfio <TAB>' offers '$got'"
[ "$got" = "$SLOT" ] && result fish-vfio-tab-slot PASS "$got" \
        || result fish-vfio-tab-slot FAIL "got '$got' want '$SLOT'"
got=$(as_user alice fish -c 'complete -C "gpuswitchctl --no-a"' 2>&1 | cut -f1)
[ "$got" = "--no-ask-password" ] && result fish-option PASS "$got" || result fish-option FAIL "got '$got'"

all_original && result nothing-switched PASS || result nothing-switched FAIL "$(state)"
finish
