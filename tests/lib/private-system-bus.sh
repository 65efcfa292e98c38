# shellcheck shell=bash
# A private system bus for the daemon's tests and benchmarks that run on
# this machine: a dbus-daemon with the system bus's rules (Debian's
# system.conf: deny by default, replies and signals allowed), gpuswitch's
# own bus policy, and what the caller adds; this machine's system bus is
# never used.  Sourced; needs $top, the source tree.
#
# private_system_bus_conf SOCKET [EXTRA_XML]: the config, on stdout.
private_system_bus_conf() {
        cat <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
        "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
        <type>system</type>
        <listen>unix:path=$1</listen>
        <auth>EXTERNAL</auth>
        <policy context="default">
                <allow user="*"/>
                <deny own="*"/>
                <deny send_type="method_call"/>
                <allow send_type="signal"/>
                <allow send_requested_reply="true" send_type="method_return"/>
                <allow send_requested_reply="true" send_type="error"/>
                <allow receive_type="method_call"/>
                <allow receive_type="method_return"/>
                <allow receive_type="error"/>
                <allow receive_type="signal"/>
                <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
                <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
                <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
        </policy>
        <include>$top/dbus/org.gpuswitch1.conf</include>
${2:-}
</busconfig>
CONF
}
