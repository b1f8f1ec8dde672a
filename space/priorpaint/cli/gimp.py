"""``priorpaint install-gimp-plugin``: copy the GIMP 3 plug-in and gimp_bridge into GIMP's plug-in folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def cmd_install(args: argparse.Namespace) -> int:
    from ..gimp_install import InstallError, default_plugin_dir, install, uninstall

    plugin_dir = Path(args.plugin_dir).expanduser() if args.plugin_dir else None
    try:
        if args.uninstall:
            removed = uninstall(plugin_dir)
            where = plugin_dir or default_plugin_dir()
            print(f"removed {removed}" if removed else f"the priorpaint plug-in is not installed in {where}")
            return 0
        target = install(plugin_dir)
    except (InstallError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"installed the GIMP plug-in in {target}")
    print("restart GIMP; the procedures are under Filters > Generative > priorpaint "
          "(start the backend with `priorpaint serve`)")
    return 0


def add_parser(sub) -> None:
    from ..gimp_install import default_plugin_dir

    p = sub.add_parser(
        "install-gimp-plugin", help="install the GIMP 3 plug-in (and gimp_bridge) into GIMP's plug-in folder",
        description="Copy the priorpaint GIMP 3 plug-in and its gimp_bridge client into GIMP 3's user "
                    f"plug-in folder (default here: {default_plugin_dir()}).")
    p.add_argument("--plugin-dir", "--gimp-dir", dest="plugin_dir", metavar="DIR",
                   help="GIMP 3 plug-ins folder to install into, e.g. ~/.config/GIMP/3.0/plug-ins (default: the "
                        "user plug-in folder of this OS); --gimp-dir is the old name of this option")
    p.add_argument("--uninstall", action="store_true", help="remove the plug-in instead")
    p.set_defaults(func=cmd_install)
