import json, os, sys
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
    print("ORACLE " + json.dumps({"urls": urls, "priority": str(context.channel_priority)}), flush=True)
    os._exit(0)

if __name__ == "__main__":
    from conda.plugins.manager import CondaPluginManager

    CondaPluginManager.get_solver_backend = lambda self, name=None: _capture
    sys.argv = ["conda", *sys.argv[1:]]
    from conda.cli.main import main
    sys.exit(main())
