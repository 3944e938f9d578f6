"""Run in a real conda's interpreter: `python conda_channels_batch.py CASES.json`.

For each case (an rc file and the file's channels), conda's own context and channel
model give the channel URLs, with `conda env create`'s rule for the rc channels
(env/installers/conda.py: appended unless the file lists `nodefaults`). Prints one JSON
list of URL lists.
"""
# mypy: ignore-errors

import json
import os
import sys

if __name__ == "__main__":
    from conda.base.context import context, reset_context
    from conda.models.channel import Channel

    results = []
    with open(sys.argv[1]) as handle:
        cases = json.load(handle)
    for case in cases:
        os.environ["CONDARC"] = case["rc"]
        reset_context()
        wanted = [c for c in case["channels"] if c != "nodefaults"]
        if "nodefaults" not in case["channels"]:
            wanted += list(context.channels)
        urls = []
        for value in wanted:
            channel = Channel(value)
            for member in getattr(channel, "_channels", None) or (channel,):
                if member.base_url is None:  # an empty multichannel (default_channels: [])
                    continue
                url = member.base_url.rstrip("/")
                if url not in urls:
                    urls.append(url)
        results.append(urls)
    print(json.dumps(results))
