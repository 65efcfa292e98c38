// SPDX-License-Identifier: LGPL-2.1-or-later
// A stand-in org.freedesktop.PolicyKit1 for the private system bus of
// test-gnome-shell.sh: CheckAuthorization answers what ANSWERS_FILE says
// for the action ("ACTION yes" or "ACTION no"; an action not listed: no),
// read at each call so that the test changes the answers while it runs.
// Each call is logged to LOG_FILE as "ACTION FLAGS ANSWER" (flags 1 =
// AllowUserInteraction: the caller let polkit ask for a password).  Agents
// may register and unregister (gnome-shell is one).
//
//   gjs polkit-standin.js ANSWERS_FILE LOG_FILE
const {Gio, GLib} = imports.gi;

const [answersFile, logFile] = ARGV;
const IFACE = `<node><interface name="org.freedesktop.PolicyKit1.Authority">
  <method name="CheckAuthorization">
    <arg type="(sa{sv})" direction="in"/><arg type="s" direction="in"/>
    <arg type="a{ss}" direction="in"/><arg type="u" direction="in"/>
    <arg type="s" direction="in"/><arg type="(bba{ss})" direction="out"/>
  </method>
  <method name="RegisterAuthenticationAgent">
    <arg type="(sa{sv})" direction="in"/><arg type="s" direction="in"/><arg type="s" direction="in"/>
  </method>
  <method name="RegisterAuthenticationAgentWithOptions">
    <arg type="(sa{sv})" direction="in"/><arg type="s" direction="in"/><arg type="s" direction="in"/>
    <arg type="a{sv}" direction="in"/>
  </method>
  <method name="UnregisterAuthenticationAgent">
    <arg type="(sa{sv})" direction="in"/><arg type="s" direction="in"/>
  </method>
</interface></node>`;

function answerFor(action) {
    let text = '';
    try {
        text = new TextDecoder().decode(GLib.file_get_contents(answersFile)[1]);
    } catch (e) {
        return false;
    }
    for (const line of text.split('\n')) {
        const [a, answer] = line.trim().split(/\s+/);
        if (a === action)
            return answer === 'yes';
    }
    return false;
}

const impl = {
    CheckAuthorization(subject, action, details, flags, cancellationId) {
        const yes = answerFor(action);
        const out = Gio.File.new_for_path(logFile).append_to(Gio.FileCreateFlags.NONE, null);
        out.write_all(`${action} ${flags} ${yes ? 'yes' : 'no'}\n`, null);
        out.close(null);
        return [yes, false, {}];
    },
    RegisterAuthenticationAgent() {},
    RegisterAuthenticationAgentWithOptions() {},
    UnregisterAuthenticationAgent() {},
};

const exported = Gio.DBusExportedObject.wrapJSObject(IFACE, impl);
const loop = new GLib.MainLoop(null, false);
Gio.bus_own_name(Gio.BusType.SYSTEM, 'org.freedesktop.PolicyKit1', Gio.BusNameOwnerFlags.NONE,
    conn => exported.export(conn, '/org/freedesktop/PolicyKit1/Authority'),
    null, () => loop.quit());
loop.run();
