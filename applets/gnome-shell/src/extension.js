// SPDX-License-Identifier: LGPL-2.1-or-later
// gpuswitch in GNOME Shell's Quick Settings.  Written as an ES module
// (GNOME 45 and later); build.sh makes the GNOME 43/44 build from it: lines
// ending in "@esm-only" are dropped there, lines starting "//@legacy " are
// kept without that prefix.
import * as Main from 'resource:///org/gnome/shell/ui/main.js';
import {Extension} from 'resource:///org/gnome/shell/extensions/extension.js'; // @esm-only
import {GpuSwitchIndicator} from './menu.js';

export default class GpuSwitchExtension extends Extension { // @esm-only
//@legacy class GpuSwitchExtension {
//@legacy     constructor() {
//@legacy         imports.misc.extensionUtils.initTranslations();
//@legacy     }
//@legacy
    enable() {
        const quickSettings = Main.panel.statusArea.quickSettings;
        this._indicator = new GpuSwitchIndicator(quickSettings.menu);
        if (quickSettings.addExternalIndicator)     // GNOME 45 and later
            quickSettings.addExternalIndicator(this._indicator);
        else
            quickSettings._indicators.insert_child_at_index(this._indicator, 0);
    }

    disable() {
        this._indicator.destroy();
        this._indicator = null;
    }

    // The indicator, for the tests (through org.gnome.Shell.Eval).
    get indicator() {
        return this._indicator;
    }
}
//@legacy
//@legacy function init() {
//@legacy     return new GpuSwitchExtension();
//@legacy }
