// SPDX-License-Identifier: LGPL-2.1-or-later
// gpuswitchd's public D-Bus API (dbus/org.gpuswitch1.xml) as the menu sees
// it: whether the daemon runs, its GPUs with their properties kept current
// by PropertiesChanged, and the calls.  Nothing here blocks the shell:
// every call is asynchronous.
import GLib from 'gi://GLib';
import Gio from 'gi://Gio';

export const BUS_NAME = 'org.gpuswitch1';
const MANAGER_PATH = '/org/gpuswitch1';
const MANAGER_IFACE = 'org.gpuswitch1.Manager';
const GPU_IFACE = 'org.gpuswitch1.Gpu';
export const ERROR_PREFIX = 'org.gpuswitch1.Error.';
export const FLAG_TERMINATE_HOLDERS = 1;
// A switch waits for polkit's password dialog and for the drivers: the
// daemon has its own step timeout, this only catches a daemon that hangs.
const SWITCH_TIMEOUT_MS = 10 * 60 * 1000;
const CALL_TIMEOUT_MS = 30 * 1000;

// The error's D-Bus name ("org.gpuswitch1.Error.GpuInUse") and its message
// without the "GDBus.Error:NAME: " prefix.
export function busError(e) {
    const name = Gio.DBusError.is_remote_error(e) ? Gio.DBusError.get_remote_error(e) : null;
    if (name)
        Gio.DBusError.strip_remote_error(e);
    return {name: name ?? '', message: e.message};
}

// ListHolders shows a caller whom polkit does not let switch each process
// of another user as one row (0, 4294967295, "", ""): a count, no names.
const HIDDEN_UID = 4294967295;

export function isHidden(holder) {
    return holder.pid === 0 && holder.uid === HIDDEN_UID;
}

let passwdCache = null;

// The user's name from /etc/passwd (what gnome-shell can read without
// blocking on NSS), else "uid N".
export function userName(uid) {
    if (passwdCache === null) {
        passwdCache = new Map();
        try {
            const [, bytes] = GLib.file_get_contents('/etc/passwd');
            for (const line of new TextDecoder().decode(bytes).split('\n')) {
                const f = line.split(':');
                if (f.length > 3)
                    passwdCache.set(Number(f[2]), f[0]);
            }
        } catch (e) {
            // no /etc/passwd: numbers only
        }
    }
    return passwdCache.get(uid) ?? `uid ${uid}`;
}

export class Gpu {
    constructor(proxy) {
        this.proxy = proxy;
        this.path = proxy.g_object_path;
    }

    _get(name, fallback) {
        const v = this.proxy.get_cached_property(name);
        return v ? v.deepUnpack() : fallback;
    }

    get address() {
        return this._get('Address', '');
    }

    get name() {
        return this._get('Name', '');
    }

    get mode() {
        return this._get('Mode', '');
    }

    get step() {
        return this._get('Step', '');
    }

    get defaultMode() {
        return this._get('DefaultMode', '');
    }

    // the VM holding it (its libvirt domain, QEMU's -name); '' for none
    // or a daemon without the property
    get virtualMachine() {
        return this._get('VirtualMachine', '');
    }
}

// onChanged() is called after every change: the daemon starting or
// stopping, its GPUs listed again, a GPU's property changing.
export class GpuSwitchClient {
    constructor(onChanged) {
        this._onChanged = onChanged;
        this._cancellable = new Gio.Cancellable();
        this._generation = 0;
        this.running = false;
        this.error = '';        // why ListGpus failed (BadConfig...)
        this.gpus = [];
        // GPUs appearing and going while the daemon runs (plugged in,
        // removed, a rescan): the Manager's Gpus property changes.
        this._gpusChanged = Gio.DBus.system.signal_subscribe(BUS_NAME, 'org.freedesktop.DBus.Properties',
            'PropertiesChanged', MANAGER_PATH, MANAGER_IFACE, Gio.DBusSignalFlags.NONE,
            (conn, sender, path, iface, signal, params) => {
                const [, changed, invalidated] = params.deepUnpack();
                if (this.running && ('Gpus' in changed || invalidated.includes('Gpus')))
                    this._listGpus();
            });
        // AUTO_START: a bus-activatable daemon is started, as any client would.
        this._watch = Gio.bus_watch_name(Gio.BusType.SYSTEM, BUS_NAME, Gio.BusNameWatcherFlags.AUTO_START,
            () => this._appeared(), () => this._vanished());
    }

    destroy() {
        Gio.DBus.system.signal_unsubscribe(this._gpusChanged);
        Gio.bus_unwatch_name(this._watch);
        this._cancellable.cancel();
        this._dropGpus();
        this._onChanged = () => {};
    }

    _dropGpus() {
        for (const gpu of this.gpus)
            gpu.proxy.disconnect(gpu.changedId);
        this.gpus = [];
    }

    _vanished() {
        this._generation++;
        this.running = false;
        this.error = '';
        this._dropGpus();
        this._onChanged();
    }

    _appeared() {
        this.running = true;
        this._listGpus();
    }

    // The GPUs, read again when the daemon starts and when its list
    // changes; a list read before the last change is dropped.
    _listGpus() {
        const generation = ++this._generation;
        Gio.DBus.system.call(BUS_NAME, MANAGER_PATH, MANAGER_IFACE, 'ListGpus', null,
            new GLib.VariantType('(a(osss))'), Gio.DBusCallFlags.NO_AUTO_START, CALL_TIMEOUT_MS,
            this._cancellable, (conn, res) => {
                let list;
                try {
                    [list] = conn.call_finish(res).deepUnpack();
                } catch (e) {
                    if (e.matches(Gio.IOErrorEnum, Gio.IOErrorEnum.CANCELLED) || generation !== this._generation)
                        return;
                    this._dropGpus();
                    this.error = busError(e).message;
                    this._onChanged();
                    return;
                }
                if (generation === this._generation)
                    this._makeProxies(generation, list.map(([path]) => path));
            });
    }

    _makeProxies(generation, paths) {
        const proxies = [];
        let left = paths.length;
        const done = () => {
            if (generation !== this._generation)
                return;
            this._dropGpus();
            this.error = '';
            for (const proxy of proxies.filter(p => p)) {
                const gpu = new Gpu(proxy);
                gpu.changedId = proxy.connect('g-properties-changed', () => this._onChanged());
                this.gpus.push(gpu);
            }
            this._onChanged();
        };
        if (left === 0) {
            done();
            return;
        }
        paths.forEach((path, i) => {
            Gio.DBusProxy.new(Gio.DBus.system, Gio.DBusProxyFlags.DO_NOT_AUTO_START, null, BUS_NAME, path,
                GPU_IFACE, this._cancellable, (o, res) => {
                    try {
                        proxies[i] = Gio.DBusProxy.new_finish(res);
                    } catch (e) {
                        if (e.matches(Gio.IOErrorEnum, Gio.IOErrorEnum.CANCELLED))
                            return;
                        logError(e, `gpuswitch: reading ${path}`);
                    }
                    if (--left === 0)
                        done();
                });
        });
    }

    _call(method, params, replyType, flags, timeout, callback) {
        Gio.DBus.system.call(BUS_NAME, MANAGER_PATH, MANAGER_IFACE, method, params,
            replyType ? new GLib.VariantType(replyType) : null, flags, timeout, this._cancellable,
            (conn, res) => {
                let reply;
                try {
                    reply = conn.call_finish(res);
                } catch (e) {
                    if (!e.matches(Gio.IOErrorEnum, Gio.IOErrorEnum.CANCELLED))
                        callback(busError(e), null);
                    return;
                }
                callback(null, reply.deepUnpack());
            });
    }

    // callback(error): error null when done, else {name, message}.  polkit
    // may ask for a password (its agent is the shell's own dialog).
    switchGpu(address, mode, flags, callback) {
        this._call('Switch', new GLib.Variant('(sst)', [address, mode, flags]), null,
            Gio.DBusCallFlags.NO_AUTO_START | Gio.DBusCallFlags.ALLOW_INTERACTIVE_AUTHORIZATION,
            SWITCH_TIMEOUT_MS, e => callback(e));
    }

    // callback(error, holders): holders [{pid, uid, command, node}], a
    // process once per node it holds; hidden ones as isHidden() tells.
    listHolders(address, callback) {
        this._call('ListHolders', new GLib.Variant('(s)', [address]), '(a(uuss))', Gio.DBusCallFlags.NO_AUTO_START,
            CALL_TIMEOUT_MS, (e, reply) => callback(e, e ? [] : reply[0].map(([pid, uid, command, node]) =>
                ({pid, uid, command, node}))));
    }
}
