#!/usr/bin/python3
"""Print the endpoint a client on the server should use, read from poled.cfg.

    config_endpoint.py /etc/pole/poled.cfg

The daemon group's `local_endpoint` when it is set and not empty (the
administrators' ipc:// socket), else the first ipc:// endpoint of
`endpoint`, else its first endpoint, else poled's default,
tcp://127.0.0.1:5570. A tcp endpoint bound on every interface
(tcp://*:PORT, tcp://0.0.0.0:PORT) is given as tcp://127.0.0.1:PORT.

Only what install_package needs of libconfig's syntax: comments (#, //,
/* */) outside strings, and `name = "string";` settings inside
`daemon = { ... }`. Exit 1, with a message, if the file cannot be read.
"""

import re
import sys

DEFAULT = "tcp://127.0.0.1:5570"


def strip_comments(text):
    """The text without its comments; strings are kept whole."""
    out = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif c == "#" or text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def daemon_group(text):
    """The body of `daemon = { ... }` (or `daemon : { ... }`), or ""."""
    match = re.search(r"(?<![A-Za-z0-9_])daemon\s*[=:]\s*\{", text)
    if not match:
        return ""
    depth, i = 1, match.end()
    start = i
    while i < len(text) and depth:
        if text[i] == '"':
            i = text.index('"', i + 1)
        elif text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
        i += 1
    return text[start:i - 1]


def setting(body, name):
    match = re.search(r"(?<![A-Za-z0-9_])%s\s*[=:]\s*\"([^\"]*)\"" % name,
                      body)
    return match.group(1) if match else None


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: config_endpoint.py FILE")
    try:
        with open(sys.argv[1], encoding="utf-8") as stream:
            text = strip_comments(stream.read())
    except OSError as error:
        sys.exit("config_endpoint.py: %s" % error)
    body = daemon_group(text)
    local = setting(body, "local_endpoint")
    if local:
        print(local)
        return
    endpoints = [item.strip() for item in
                 (setting(body, "endpoint") or DEFAULT).split(",")
                 if item.strip()]
    ipc = [item for item in endpoints if item.startswith("ipc://")]
    chosen = (ipc or endpoints or [DEFAULT])[0]
    chosen = re.sub(r"^tcp://(\*|0\.0\.0\.0):", "tcp://127.0.0.1:", chosen)
    print(chosen)


if __name__ == "__main__":
    main()
