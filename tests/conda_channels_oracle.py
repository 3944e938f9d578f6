"""Run in a real conda's interpreter: `python conda_channels_oracle.py env create ...`.

conda's own CLI runs unchanged up to its solver; the solver class is replaced by a
function that prints the channels conda hands it (one ``ORACLE {json}`` line: each
channel's base URL, a multichannel's members in order) and exits, so nothing is fetched.
"""
# mypy: ignore-errors

import json
import os
import sys

from conda.base.context import context


def _capture(prefix, channels, subdirs=(), *args, **kwargs):
    from conda.models.channel import Channel

    urls = []
    for value in channels:
        channel = Channel(value)
        for member in getattr(channel, "_channels", None) or (channel,):
            url = member.base_url.rstrip("/")
            if url not in urls:
                urls.append(url)
    found = {"urls": urls, "priority": str(context.channel_priority)}
    print("ORACLE " + json.dumps(found), flush=True)
    os._exit(0)


if __name__ == "__main__":  # conda's CUDA detection starts a spawned child
    from conda.plugins.manager import CondaPluginManager

    # Patched on the class before the manager exists: it caches the bound method.
    CondaPluginManager.get_solver_backend = lambda self, name=None: _capture
    sys.argv = ["conda", *sys.argv[1:]]
    from conda.cli.main import main

    sys.exit(main())
