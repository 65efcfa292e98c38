// SPDX-License-Identifier: LGPL-2.1-or-later
// The Quick Settings items: one toggle per managed GPU (checked while the
// GPU is given to virtual machines), its menu with the mode, the default
// mode, the step of a switch under way and the last switch's outcome, the
// two modes to choose, and the programs holding the GPU when a switch was
// refused for them; one insensitive item when gpuswitchd is not running.
import GObject from 'gi://GObject';
import * as Main from 'resource:///org/gnome/shell/ui/main.js';
import * as PopupMenu from 'resource:///org/gnome/shell/ui/popupMenu.js';
import {QuickMenuToggle, QuickToggle, SystemIndicator} from 'resource:///org/gnome/shell/ui/quickSettings.js';
import {gettext as _, ngettext} from 'resource:///org/gnome/shell/extensions/extension.js';
import {ERROR_PREFIX, FLAG_TERMINATE_HOLDERS, GpuSwitchClient, isHidden, userName} from './client.js';

const ICON = 'video-display-symbolic';
// GNOME 44 gave the toggles a title and a subtitle; 43 has one label.
const HAS_SUBTITLE = 'subtitle' in QuickToggle.prototype;

function modeText(mode) {
    switch (mode) {
    case 'host':
        return _('Host');
    case 'vfio':
        return _('VFIO (virtual machines)');
    case 'mixed':
        return _('Mixed');
    case 'switching':
        return _('Switching');
    case 'keep':
        return _('Keep as it is');
    default:
        return mode;
    }
}

// A toggle with a title alone (43) takes the grid's two columns, for the
// mode to fit beside the name.
const COL_SPAN = HAS_SUBTITLE ? 1 : 2;

// Where GNOME 45 and later put an extension's toggles: before the
// background apps, which end the menu.  GNOME 43 and 44 add them last.
function addToggle(qsMenu, toggle) {
    const sibling = Main.panel.statusArea.quickSettings._backgroundApps?.quickSettingsItems?.at(-1);
    if (sibling && qsMenu.insertItemBefore)
        qsMenu.insertItemBefore(toggle, sibling, COL_SPAN);
    else
        qsMenu.addItem(toggle, COL_SPAN);
}

function setTitle(toggle, title, subtitle) {
    if (HAS_SUBTITLE)
        toggle.set({title, subtitle});
    else
        toggle.label = subtitle ? `${title}: ${subtitle}` : title;
}

// "gnome-shell (PID 1234, alice)"
function processText(h) {
    return _('%s (PID %d, %s)').format(h.command, h.pid, userName(h.uid));
}

// The rows of ListHolders a process of another user hides: one each.
function hiddenText(holders) {
    const n = holders.filter(isHidden).length;
    return n ? ngettext('%d process of another user', '%d processes of other users', n).format(n) : '';
}

function infoItem() {
    const item = new PopupMenu.PopupMenuItem('', {reactive: false, can_focus: false});
    item.label.clutter_text.line_wrap = true;
    return item;
}

const GpuToggle = GObject.registerClass(
class GpuToggle extends QuickMenuToggle {
    _init(client, gpu) {
        super._init({iconName: ICON});
        this._client = client;
        this.gpu = gpu;
        this._pending = '';     // the mode we asked for, while our call runs
        this._outcome = '';
        this._outcomeMode = '';
        // the mode of a switch whose step timed out: it goes on in the
        // daemon, and its end is told when the GPU leaves "switching"
        this._timedOutTo = '';
        this._holders = null;   // [{pid, uid, command, node}] after GpuInUse
        this._holdersMode = '';

        this._modeItem = infoItem();
        this._stepItem = infoItem();
        this._defaultItem = infoItem();
        this._outcomeItem = infoItem();
        // On vfio: who has it (QEMU through /dev/vfio/N), read when the menu
        // opens.  The API names processes; which VM is not in it yet.
        this._vmItem = infoItem();
        this._usersItem = infoItem();
        this._users = [];
        for (const item of [this._modeItem, this._stepItem, this._vmItem, this._usersItem, this._defaultItem,
            this._outcomeItem])
            this.menu.addMenuItem(item);
        this.menu.addMenuItem(new PopupMenu.PopupSeparatorMenuItem());

        this._modeItems = {
            host: new PopupMenu.PopupMenuItem(_('Use on the host')),
            vfio: new PopupMenu.PopupMenuItem(_('Give to virtual machines (vfio-pci)')),
        };
        for (const [mode, item] of Object.entries(this._modeItems)) {
            item.connect('activate', () => this.switchTo(mode, 0));
            this.menu.addMenuItem(item);
        }

        this._holdersSection = new PopupMenu.PopupMenuSection();
        this.menu.addMenuItem(this._holdersSection);

        this.connect('clicked', () => this.switchTo(this.gpu.mode === 'vfio' ? 'host' : 'vfio', 0));
        this.menu.connect('open-state-changed', (m, open) => {
            if (open)
                this._readUsers();
        });
        // calls outlive the item when the daemon goes away meanwhile
        this._gone = false;
        this.connect('destroy', () => {
            this._gone = true;
            this.menu.destroy();
        });
        this.sync();
    }

    _readUsers() {
        if (this.gpu.mode !== 'vfio') {
            this._users = [];
            this.sync();
            return;
        }
        this._client.listHolders(this.gpu.address, (e, holders) => {
            if (this._gone)
                return;
            this._users = e ? [] : holders;
            this.sync();
        });
    }

    switchTo(mode, flags) {
        if (this._pending)
            return;
        this._pending = mode;
        this._outcome = '';
        this._timedOutTo = '';
        this._holders = null;
        this.sync();
        const address = this.gpu.address;
        const before = this.gpu.mode;
        this._client.switchGpu(address, mode, flags, e => {
            if (this._gone)
                return;
            this._pending = '';
            if (!e)
                this._outcome = _('Switched to %s').format(modeText(mode));
            else
                this._failed(address, mode, e);
            // An outcome is about the mode it left (the reply may come
            // before the last PropertiesChanged): a switch made elsewhere
            // afterwards clears it.
            if (!e)
                this._outcomeMode = mode;
            else
                this._outcomeMode = this.gpu.mode === 'switching' ? before : this.gpu.mode;
            this.sync();
        });
    }

    _failed(address, mode, e) {
        const what = _('Switching %s to %s').format(this.gpu.name || address, modeText(mode));
        switch (e.name) {
        case `${ERROR_PREFIX}GpuInUse`:
            this._outcome = _('Not switched: programs are using the GPU');
            this._client.listHolders(address, (le, holders) => {
                if (this._gone)
                    return;
                if (le)
                    this._outcome = `${this._outcome} (${le.message})`;
                else
                    this._holders = holders;
                this._holdersMode = mode;
                this.sync();
            });
            return;
        case `${ERROR_PREFIX}SwitchFailed`:
            this._outcome = _('Failed, rolled back: %s').format(e.message);
            break;
        case `${ERROR_PREFIX}Timeout`:
            this._outcome = _('Timed out: %s').format(e.message);
            this._timedOutTo = mode;
            break;
        case 'org.freedesktop.DBus.Error.AccessDenied':
        case 'org.freedesktop.DBus.Error.InteractiveAuthorizationRequired':
            this._outcome = _('Not authorized');
            break;
        default:
            this._outcome = _('Not switched: %s').format(e.message);
        }
        Main.notify(what, e.name.endsWith('AccessDenied') || e.name.endsWith('AuthorizationRequired')
            ? _('Not authorized: %s').format(e.message) : this._outcome);
    }

    _syncHolders() {
        this._holdersSection.removeAll();
        if (!this._holders || this.gpu.mode === this._holdersMode)
            return;
        const title = infoItem();
        title.label.text = this._holders.length
            ? _('In use by:') : _('No program holds it any more');
        this._holdersSection.addMenuItem(title);
        const rows = this._holders.filter(h => !isHidden(h))
            .map(h => _('%s holds %s').format(processText(h), h.node));
        if (hiddenText(this._holders))
            rows.push(hiddenText(this._holders));
        for (const text of rows) {
            const item = infoItem();
            item.label.text = text;
            this._holdersSection.addMenuItem(item);
        }
        const mode = this._holdersMode;
        const end = new PopupMenu.PopupMenuItem(this._holders.length
            ? _('End them and switch') : _('Switch'));
        end.connect('activate', () => this.switchTo(mode, this._holders.length ? FLAG_TERMINATE_HOLDERS : 0));
        this._holdersSection.addMenuItem(end);
    }

    sync() {
        const {gpu} = this;
        const mode = gpu.mode;
        if (this._timedOutTo && !this._pending && mode !== 'switching') {
            this._outcome = mode === this._timedOutTo
                ? _('Switched to %s after the time-out').format(modeText(mode))
                : _('The switch that timed out ended on %s').format(modeText(mode));
            this._outcomeMode = mode;
            this._timedOutTo = '';
        }
        if (!this._pending && mode !== 'switching' && this._outcome && mode !== this._outcomeMode) {
            this._outcome = '';
            this._holders = null;
        }
        const busy = this._pending !== '' || mode === 'switching';
        const title = this._client.gpus.length > 1 ? _('GPU %s').format(gpu.address.replace(/^0000:/, ''))
            : _('GPU');
        setTitle(this, title, this._pending && mode !== 'switching'
            ? _('Switching to %s').format(modeText(this._pending)) : modeText(mode));
        this.checked = mode === 'vfio';
        this.menu.setHeader(ICON, gpu.name || _('GPU'), gpu.address);

        this._modeItem.label.text = _('Mode: %s').format(modeText(mode));
        this._stepItem.label.text = mode === 'switching' && gpu.step ? _('Step: %s').format(gpu.step) : '';
        this._stepItem.visible = this._stepItem.label.text !== '';
        this._vmItem.label.text = gpu.virtualMachine ? _('Held by the VM %s').format(gpu.virtualMachine) : '';
        this._vmItem.visible = this._vmItem.label.text !== '';
        const users = mode === 'vfio' ? this._users : [];
        // a process once, whatever the nodes it holds
        const named = [...new Map(users.filter(h => !isHidden(h)).map(h => [h.pid, processText(h)])).values()];
        if (hiddenText(users))
            named.push(hiddenText(users));
        this._usersItem.label.text = named.length ? _('Used by: %s').format(named.join(', ')) : '';
        this._usersItem.visible = users.length > 0;
        this._defaultItem.label.text = _('At boot: %s').format(modeText(gpu.defaultMode));
        this._outcomeItem.label.text = this._pending ? _('Switching to %s…').format(modeText(this._pending))
            : this._outcome;
        this._outcomeItem.visible = this._outcomeItem.label.text !== '';

        for (const [m, item] of Object.entries(this._modeItems)) {
            item.setOrnament(m === mode ? PopupMenu.Ornament.DOT : PopupMenu.Ornament.NONE);
            item.setSensitive(!busy && m !== mode);
        }
        this.reactive = !busy;
        this._syncHolders();
    }
});

export const GpuSwitchIndicator = GObject.registerClass(
class GpuSwitchIndicator extends SystemIndicator {
    // quickSettingsMenu: the panel's Quick Settings menu, where the items go
    _init(quickSettingsMenu) {
        super._init();
        this._qsMenu = quickSettingsMenu;
        this._icon = this._addIndicator();
        this._icon.icon_name = ICON;
        this._icon.visible = false;
        this._toggles = new Map();      // object path -> GpuToggle

        this._notRunning = new QuickToggle({iconName: ICON, reactive: false, visible: false});
        setTitle(this._notRunning, _('GPU'), _('gpuswitchd is not running'));
        addToggle(this._qsMenu, this._notRunning);

        this._client = new GpuSwitchClient(() => this._sync());
        this.connect('destroy', () => {
            this._client.destroy();
            for (const t of this._toggles.values())
                t.destroy();
            this._notRunning.destroy();
        });
    }

    _sync() {
        const client = this._client;
        const paths = new Set(client.gpus.map(g => g.path));
        for (const [path, toggle] of this._toggles) {
            if (!paths.has(path)) {
                toggle.destroy();
                this._toggles.delete(path);
            }
        }
        for (const gpu of client.gpus) {
            let toggle = this._toggles.get(gpu.path);
            if (toggle) {
                toggle.gpu = gpu;
            } else {
                toggle = new GpuToggle(client, gpu);
                this._toggles.set(gpu.path, toggle);
                addToggle(this._qsMenu, toggle);
            }
        }
        for (const toggle of this._toggles.values())
            toggle.sync();

        this._notRunning.visible = !client.running || client.error !== '';
        if (client.error)
            setTitle(this._notRunning, _('GPU'), client.error);
        else
            setTitle(this._notRunning, _('GPU'), _('gpuswitchd is not running'));
        // the panel icon: a GPU away from the host
        this._icon.visible = client.gpus.some(g => g.mode !== 'host');
    }

    // What the items show, read back from their widgets (for the tests).
    describe() {
        const text = a => a?.visible ? a.text : null;
        const labelOf = t => HAS_SUBTITLE ? `${t.title}: ${t.subtitle}` : t.label;
        return {
            notRunning: this._notRunning.visible ? labelOf(this._notRunning) : null,
            icon: this._icon.visible,
            gpus: [...this._toggles.values()].map(t => ({
                address: t.gpu.address,
                mode: t.gpu.mode,
                label: labelOf(t),
                checked: t.checked,
                reactive: t.reactive,
                header: t.menu._headerTitle?.text,
                items: t.menu._getMenuItems().flatMap(i => i instanceof PopupMenu.PopupMenuSection
                    ? i._getMenuItems() : [i]).filter(i => i.visible && i.label)
                    .map(i => ({text: text(i.label), sensitive: i.getSensitive(),
                        dot: i._ornament === PopupMenu.Ornament.DOT})),
            })),
        };
    }

    // The test's hand: activates the menu item of GPU address that reads text.
    activate(address, text) {
        for (const t of this._toggles.values()) {
            if (t.gpu.address !== address)
                continue;
            const items = t.menu._getMenuItems().flatMap(i => i instanceof PopupMenu.PopupMenuSection
                ? i._getMenuItems() : [i]);
            const item = items.find(i => i.label?.text === text && i.visible && i.getSensitive());
            if (!item)
                return false;
            item.activate(null);
            return true;
        }
        return false;
    }

    toggleOf(address) {
        return [...this._toggles.values()].find(t => t.gpu.address === address) ?? null;
    }
});
